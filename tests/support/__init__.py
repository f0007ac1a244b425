"""What the tests and the benchmarks share: test weights, corpora of real encoded videos, real servers started on 127.0.0.1, and measurements."""
