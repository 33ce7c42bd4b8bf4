"""LLM-Auction service: ads inside an LLM's answer, allocated by the LLM and priced by a first-price auction."""

__version__ = "0.1.0"
