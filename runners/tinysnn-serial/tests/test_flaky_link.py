"""A link that drops or corrupts 1% of its bytes in each direction: the host still finishes
with every result right, and the retries are counted."""

import random

from tinysnn_serial import protocol as P
from tinysnn_serial.transports import FlakyTransport, PtyTransport


def test_one_percent_flaky_link(host_fw):
    rng = random.Random(11)
    link = FlakyTransport(PtyTransport([str(host_fw)]), drop=0.005, corrupt=0.005, seed=2024)
    with link:
        dut = P.DeviceUnderTest(link, timeout=0.2, quiet=0.005, settle=0.05, chunk=16,
                                retries=200)
        assert dut.connect() == "host"
        for sid in range(3):
            image = bytes(rng.randrange(256) for _ in range(784))
            res = dut.run_sample(image, 5, sid)
            assert (res.counts, res.prediction) == P.protocol_test_engine(image, 5, sid)
    assert link.stats.total > 0, "the proxy damaged nothing: the test would prove nothing"
    assert dut.stats.retries > 0 and dut.stats.samples == 3
    print(f"flaky link: {link.stats}, host: {dut.stats.as_dict()}")
