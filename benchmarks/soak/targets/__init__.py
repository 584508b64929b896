"""The stores the soak harness can start and break, one module per kind."""
