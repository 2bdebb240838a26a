"""The built-in rounding schemes and quantizers pass the conformance kit."""

from tinysnn_core.testing import quantizer_conformance, rounding_conformance

TestTruncation = rounding_conformance("truncation")
TestNearest = rounding_conformance("nearest", max_error_steps=0.5)
TestStochastic = rounding_conformance("stochastic", deterministic=False, unbiased=True)
TestPTQ = quantizer_conformance("ptq")
TestITQ = quantizer_conformance("itq")
