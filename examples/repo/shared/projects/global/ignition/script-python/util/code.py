def clamp(value, low, high):
	"""Keep a tag value inside its engineering range."""
	return max(low, min(high, value))
