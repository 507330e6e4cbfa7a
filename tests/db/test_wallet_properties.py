"""Property test of the wallet core against a simple model: random credits, debits (plain and
clamped) and replays across users and both currencies."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from psycopg.rows import dict_row

from tests.db.conftest import apply_change, audit, connect, make_user, one

CURRENCIES = ("STAR", "COIN")
CREDIT_TYPE = {"STAR": "purchase", "COIN": "invite_reward"}
DEBIT_TYPE = {"STAR": "reading", "COIN": "exchange"}


def wallet_machine(url: str) -> type[RuleBasedStateMachine]:
    class Wallets(RuleBasedStateMachine):
        keys = Bundle("keys")

        def __init__(self) -> None:
            super().__init__()
            self.conn: psycopg.Connection[Any] = connect(url, row_factory=dict_row)
            self.users: list[uuid.UUID] = []
            self.model: dict[tuple[uuid.UUID, str], int] = {}
            # dedupe key -> (user, currency, type, recorded amount)
            self.recorded: dict[str, tuple[uuid.UUID, str, str, int]] = {}

        @initialize(count=st.integers(min_value=1, max_value=3))
        def create_users(self, count: int) -> None:
            for _ in range(count):
                user = make_user(self.conn)
                self.users.append(user)
                for currency in CURRENCIES:
                    self.model[(user, currency)] = 0

        def _apply(
            self, user: uuid.UUID, currency: str, amount: int, kind: str, clamp: bool
        ) -> str | None:
            key = f"prop:{uuid.uuid4()}"
            balance = self.model[(user, currency)]
            if balance + amount < 0 and not clamp:
                with pytest.raises(psycopg.Error) as info:
                    apply_change(self.conn, user, currency, amount, kind, key)
                assert info.value.sqlstate == ("MV001" if currency == "STAR" else "MV002")
                return None
            row = one(
                self.conn,
                "select (private.apply_wallet_change(%s, %s::public.currency, %s,"
                " %s::public.transaction_type, %s, p_clamp => %s)).*",
                (user, currency, amount, kind, key, clamp),
            )
            if balance == 0 and amount < 0:
                assert row["id"] is None  # clamped with nothing to take: no row
                return None
            applied = max(amount, -balance)
            assert row["amount"] == applied
            self.model[(user, currency)] = balance + applied
            assert row["balance_after"] == balance + applied
            self.recorded[key] = (user, currency, kind, applied)
            return key

        @rule(
            target=keys,
            data=st.data(),
            currency=st.sampled_from(CURRENCIES),
            amount=st.integers(min_value=1, max_value=50),
        )
        def credit(self, data: st.DataObject, currency: str, amount: int) -> Any:
            user = data.draw(st.sampled_from(self.users))
            return self._apply(user, currency, amount, CREDIT_TYPE[currency], False)

        @rule(
            target=keys,
            data=st.data(),
            currency=st.sampled_from(CURRENCIES),
            amount=st.integers(min_value=1, max_value=60),
            clamp=st.booleans(),
        )
        def debit(self, data: st.DataObject, currency: str, amount: int, clamp: bool) -> Any:
            user = data.draw(st.sampled_from(self.users))
            return self._apply(user, currency, -amount, DEBIT_TYPE[currency], clamp)

        @rule(key=keys, amount=st.integers(min_value=-60, max_value=60).filter(bool))
        def replay(self, key: str | None, amount: int) -> None:
            if key is None:
                return
            user, currency, kind, recorded = self.recorded[key]
            row = apply_change(self.conn, user, currency, amount, kind, key)
            assert (row["dedupe_key"], row["amount"]) == (key, recorded)

        @invariant()
        def balances_match_model(self) -> None:
            if not self.users:
                return
            rows = self.conn.execute(
                "select id, star_balance, coin_balance from public.users where id = any(%s)",
                (self.users,),
            ).fetchall()
            for r in rows:
                assert r["star_balance"] == self.model[(r["id"], "STAR")] >= 0
                assert r["coin_balance"] == self.model[(r["id"], "COIN")] >= 0

        def teardown(self) -> None:
            try:
                if self.users:
                    assert audit(self.conn, self.users) == []
            finally:
                self.conn.close()

    return Wallets


@pytest.mark.slow
def test_wallet_core_matches_a_model_of_balances(migrated_db):
    run_state_machine_as_test(
        wallet_machine(migrated_db),
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
