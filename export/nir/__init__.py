"""The NIR graph of a network (`make nir`) and its round trip through sinabs."""
