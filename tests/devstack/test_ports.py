"""A preferred port is used when free and replaced by a free one when taken."""

from __future__ import annotations

import socket

from devstack.ports import free_port, port_is_free


def test_a_taken_preferred_port_is_replaced_by_a_free_one() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert not port_is_free(busy)
        chosen = free_port(busy)
        assert chosen != busy
        assert port_is_free(chosen)
    assert free_port(busy) == busy  # released: the preferred port is used again
