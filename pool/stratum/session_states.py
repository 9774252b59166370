"""A Stratum session's states and the legal moves between them, in one table (h11's _state.py).

Firmware subscribes and authorizes in either order (cgminer subscribes first, some proxies
authorize first); work starts the moment both happened. A subscribe carrying a resume token may
wait for the shared resume directory: input is held meanwhile, and the answer returns the session
to where the subscribe found it, so the subscribe then completes as any other.

    CONNECTED --subscribe--> SUBSCRIBED --authorize--> WORKING
    CONNECTED --authorize--> AUTHORIZED --subscribe--> WORKING
    CONNECTED / AUTHORIZED --lookup--> RESUMING / AUTHORIZED_RESUMING --resumed--> CONNECTED / AUTHORIZED
    WORKING --halt--> HALTED (the session's own code failed; the connection is being closed)
    any --lost--> CLOSED

A move the table does not hold is a bug in the session (never a client's fault: what a client may
send in each state is decided before a move is made) and raises IllegalMove.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    CONNECTED = "connected"                       # nothing yet
    SUBSCRIBED = "subscribed"                     # has an extranonce1, no worker yet
    AUTHORIZED = "authorized"                     # has a worker, not subscribed yet
    RESUMING = "resuming"                         # subscribe waits for the resume directory
    AUTHORIZED_RESUMING = "authorized_resuming"   # the same, with a worker already authorized
    WORKING = "working"                           # subscribed and authorized: has work, gets broadcasts
    HALTED = "halted"                             # no more work: its own code failed, it is closing
    CLOSED = "closed"                             # the connection is gone


class Move(enum.Enum):
    SUBSCRIBE = "subscribe"      # an extranonce1 was given (fresh or resumed) and the reply queued
    AUTHORIZE = "authorize"      # a worker was authorized
    LOOKUP = "lookup"            # the subscribe's resume token goes to the shared directory
    RESUMED = "resumed"          # the directory answered
    HALT = "halt"                # the server stops this session's work (a bug it hit)
    LOST = "lost"                # the connection closed


TRANSITIONS: dict[State, dict[Move, State]] = {
    State.CONNECTED: {Move.SUBSCRIBE: State.SUBSCRIBED, Move.AUTHORIZE: State.AUTHORIZED,
                      Move.LOOKUP: State.RESUMING},
    State.SUBSCRIBED: {Move.SUBSCRIBE: State.SUBSCRIBED, Move.AUTHORIZE: State.WORKING},
    State.AUTHORIZED: {Move.SUBSCRIBE: State.WORKING, Move.AUTHORIZE: State.AUTHORIZED,
                       Move.LOOKUP: State.AUTHORIZED_RESUMING},
    State.RESUMING: {Move.RESUMED: State.CONNECTED},
    State.AUTHORIZED_RESUMING: {Move.RESUMED: State.AUTHORIZED},
    State.WORKING: {Move.SUBSCRIBE: State.WORKING, Move.AUTHORIZE: State.WORKING, Move.HALT: State.HALTED},
    State.HALTED: {},
    State.CLOSED: {},
}
for _row in TRANSITIONS.values():
    _row[Move.LOST] = State.CLOSED

SUBSCRIBED_STATES = frozenset({State.SUBSCRIBED, State.WORKING, State.HALTED})
PAUSED_STATES = frozenset({State.RESUMING, State.AUTHORIZED_RESUMING})   # input is held, not read


class IllegalMove(RuntimeError):
    """A move the table does not allow from the current state: a bug in the session."""


def next_state(state: State, move: Move) -> State:
    after = TRANSITIONS[state].get(move)
    if after is None:
        raise IllegalMove(f"{move.value} in state {state.value}")
    return after
