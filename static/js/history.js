// history screen: progressive enhancement only.
