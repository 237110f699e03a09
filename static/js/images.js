// images screen: progressive enhancement only.
