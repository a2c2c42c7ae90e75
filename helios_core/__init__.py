"""Helios core: everything the pages, the CLI and the workers share. Never imports streamlit."""

__version__ = "0.1.0"
