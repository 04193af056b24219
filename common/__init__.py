"""Small helpers shared by every stage (no torch imports here: hw_model uses them too)."""
