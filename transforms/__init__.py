"""Pure, vectorised transformations: bytes to tables, salaries to contributions."""
