"""Pages, one module per screen: create (and the task card), gallery, images and tags, history."""
