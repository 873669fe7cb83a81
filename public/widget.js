// widget loader placeholder
