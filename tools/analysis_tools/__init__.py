"""Speed, memory and environment analysis."""
