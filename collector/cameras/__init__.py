"""Camera health at the collector: each cabinet's cameras, their open faults, firmware and clock, for operators only."""
