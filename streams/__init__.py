"""Topics, record schemas and the Faust app: the contract between the pipeline's stages."""
