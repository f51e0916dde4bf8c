"""The checks the power-cut test makes after each cut fail on each way a journal can break its promise
(the power-cut test itself passes only if they never do): on made-up recovered journals."""

from __future__ import annotations

import pytest

from tests.powercut.test_agent_power_cut import Ledger, Recovered

FIRST = 1_000_000


def journal(next_seq: int, seqs: range | list[int], *, ts: int = 0, integrity: str = "ok",
            complaints: tuple[str, ...] = ()) -> Recovered:
    records = {s: {"seq": s, "kind": "sample", "device": "lamp-01", "ts_ms": s + ts} for s in seqs}
    return Recovered(integrity, next_seq, records, list(complaints))


def stored(upto: int) -> list[int]:
    return list(range(FIRST, upto + 1))


def test_a_journal_that_kept_its_promises_passes_cut_after_cut() -> None:
    ledger = Ledger()
    ledger.after_cut(1, journal(FIRST + 5, range(FIRST + 3, FIRST + 5)), stored(FIRST + 2), seen=FIRST + 4)
    # the acknowledged records not yet deleted come back, the same records
    ledger.after_cut(2, journal(FIRST + 9, range(FIRST + 4, FIRST + 9)), stored(FIRST + 5), seen=None)
    ledger.after_cut(3, journal(FIRST + 9, []), stored(FIRST + 8), seen=None)
    assert ledger.next_seq == FIRST + 9 and len(ledger.promised) == 6


def test_lost_commits_the_collector_holds_fail_as_numbers_about_to_be_reused() -> None:
    """synchronous=NORMAL: the WAL's last commits vanish, and the counter with them."""
    with pytest.raises(AssertionError, match="would be reused"):
        Ledger().after_cut(1, journal(FIRST + 6, range(FIRST + 3, FIRST + 6)), stored(FIRST + 8), seen=None)


def test_lost_commits_the_local_api_counted_fail_too() -> None:
    with pytest.raises(AssertionError, match="would be reused"):
        Ledger().after_cut(1, journal(FIRST + 6, range(FIRST + 3, FIRST + 6)), stored(FIRST + 2), seen=FIRST + 7)


def test_records_neither_in_the_journal_nor_in_the_collector_fail() -> None:
    with pytest.raises(AssertionError, match="2 records numbered before"):
        Ledger().after_cut(1, journal(FIRST + 10, range(FIRST + 8, FIRST + 10)), stored(FIRST + 5), seen=None)


def test_a_journal_recreated_empty_fails() -> None:
    """synchronous=OFF: nothing reached the disk, the journal starts again from the clock."""
    ledger = Ledger()
    ledger.after_cut(1, journal(FIRST + 5, range(FIRST + 3, FIRST + 5)), stored(FIRST + 2), seen=None)
    with pytest.raises(AssertionError, match="neither in the journal nor in the collector"):
        ledger.after_cut(2, journal(FIRST + 50_000, []), stored(FIRST + 2), seen=None)


def test_a_seq_that_changes_record_between_cuts_fails() -> None:
    ledger = Ledger()
    ledger.after_cut(1, journal(FIRST + 5, range(FIRST + 3, FIRST + 5)), stored(FIRST + 2), seen=None)
    with pytest.raises(AssertionError, match="in an earlier journal"):
        ledger.after_cut(2, journal(FIRST + 5, range(FIRST + 3, FIRST + 5), ts=1), stored(FIRST + 2), seen=None)


@pytest.mark.parametrize(("broken", "message"), [
    (journal(FIRST + 1, [], integrity="*** in database main ***\nPage 5: btreeInitPage() returns error code 11"),
     "integrity_check"),
    (journal(FIRST + 1, [], complaints=("citygate.journal: journal.db was corrupt, moved aside",)), "complained"),
])
def test_a_journal_that_needs_repair_fails(broken: Recovered, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        Ledger().after_cut(1, broken, stored(FIRST), seen=None)
