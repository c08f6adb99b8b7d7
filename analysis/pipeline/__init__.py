"""The pipeline: figures and claims the notebooks leave behind, and running every notebook."""
