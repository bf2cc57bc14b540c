from ponder.backends.kv_slots import SlotTable


def _cached(t: SlotTable, tokens: list[int]) -> int:
    s = t.acquire()
    t.assign(s, tokens)
    t.mark_evaluated(s, len(tokens))
    t.release(s)
    return s


def test_longest_prefix_wins_and_never_covers_the_last_token():
    t = SlotTable(4)
    a = _cached(t, [1, 2, 3])
    b = _cached(t, [1, 2, 3, 4, 5])
    m = t.best_prefix([1, 2, 3, 4, 9])
    assert (m.slot, m.length, m.pending) == (b, 4, False)
    # an identical prompt still re-evaluates its last token (to get logits)
    assert t.best_prefix([1, 2, 3]).length == 2
    assert t.best_prefix([7, 8]).slot is None
    assert a != b


def test_busy_slot_counts_only_what_is_evaluated_unless_waiting_pays():
    t = SlotTable(3)
    s = t.acquire()
    t.assign(s, list(range(40)))
    t.mark_evaluated(s, 5)
    m = t.best_prefix(list(range(40)) + [99])
    assert m.pending and m.length == 40  # 35 more tokens are coming: wait for them
    t2 = SlotTable(3)
    s2 = t2.acquire()
    t2.assign(s2, list(range(10)))
    t2.mark_evaluated(s2, 5)
    m2 = t2.best_prefix(list(range(10)) + [99])
    assert not m2.pending and m2.length == 5  # only 5 more: take what is ready


def test_release_keeps_only_evaluated_tokens_and_lru_eviction():
    t = SlotTable(2)
    s = t.acquire()
    t.assign(s, [1, 2, 3])
    t.mark_evaluated(s, 3)
    t.append(s, 4)  # sampled but never evaluated
    t.release(s)
    assert t.slots[s].tokens == [1, 2, 3] and t.slots[s].state == "cached"
    other = _cached(t, [5, 6])
    assert t.n_available() == 2
    # both cached: a new sequence takes the least recently used one, unless protected
    assert t.acquire(protect=frozenset([s])) == other
    assert t.acquire() == s
    assert t.acquire() is None


def test_take_claims_a_cached_slot_without_copy():
    t = SlotTable(2)
    s = _cached(t, [1, 2, 3, 4])
    t.take(s, 2)
    assert t.slots[s].state == "busy" and t.slots[s].tokens == [1, 2] and t.slots[s].evaluated == 2
    assert t.evict_lru() is None
