"""`dialc lsp`: the language server (pygls) over the compiler's own front end, schema and formatter."""
