"""Publishing existing catalogues through the same schema mechanism as the ML products."""
