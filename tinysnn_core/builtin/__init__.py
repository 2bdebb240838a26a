"""tinySNN's reference plugins. Each module registers through the public hooks only."""
