"""One module per emulated wire format; ``emulator._dialects.WIRES`` lists them."""
