// gallery screen: progressive enhancement only.
