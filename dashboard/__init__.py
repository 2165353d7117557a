"""The Streamlit dashboard: pages over the gro API, reached by HTTP only."""
