"""Streamlit glue shared by app.py and the pages: session state, cached traces, the URL. No core logic here."""
