"""The handoff desk: a person's request for a human, and what staff do with it.

One service for both sides, so that each step happens the same way from the router, the
console pages and the console API:

* the person: asking (plain words, or the model's ``ask_human``), her département when it
  matters, the answer on when a human will write, cancelling while nobody has taken it;
* the staff: claim (she is told a person is there), reply, release to the bot or close (she is
  told the person has finished);
* live events on Redis pub/sub (``outreach:console:<association>``) for the consoles of the
  association; they carry only an event type and a handoff id, never a text.

While a request is open the bot keeps answering her questions; once claimed it is silent
(the router checks the conversation state).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, List, Optional, Sequence, Set, Tuple

from babel import Locale
from babel.dates import format_date, format_time, match_skeleton
from redis.asyncio import Redis

from bot import queues, statistics
from bot.discreet import Discretion, opening
from bot.erasure import erase_pending_key
from bot.handoff import departements
from bot.handoff.routing import Decision, route
from bot.handoff.signals import Signals
from bot.handoff.states import REQUESTED, HandoffRef, HandoffStore
from bot.handoff.store import DirectoryStore
from bot.handoff.texts import (
    ALREADY_WAITING,
    ASK_DEPARTEMENT,
    CANCELLED,
    CLAIMED,
    DEPARTEMENT_AGAIN,
    ENDED,
    NO_ASSOCIATION,
    REQUESTED_CLOSED,
    REQUESTED_OPEN,
)
from bot.i18n import Catalogs, fill
from bot.metrics import Metrics
from bot.models import utcnow
from bot.store import ConversationRef, Inbound, Store

log = logging.getLogger(__name__)

# Babel locales of the served languages (dates and times in her language)
BABEL_LOCALES = {"pt": "pt_BR", "zh": "zh_Hans_CN"}
DEPARTEMENT_TTL_S = 900
FLAGS_TTL_S = 7 * 24 * 3600
NOT_SAYING = {"0", "00"}
_NUMBERISH = re.compile(r"^[\s0-9a-bA-B.,#-]*$")  # a wrong number is an answer, not a question
_WEEKDAY = re.compile(r"(?<!')E{1,4}|c{3,4}")
_MONTH = re.compile(r"(?<!M)M{3}(?!M)")
_SPACES = re.compile(r"[\u00a0\u202f\u2009]")


def console_channel(association: str) -> str:
    return f"{queues.PREFIX}:console:{association}"


def _departement_key(conversation_id: int) -> str:
    return f"{queues.PREFIX}:handoff:departement:{conversation_id}"


def _flags_key(conversation_id: int) -> str:
    return f"{queues.PREFIX}:handoff:flags:{conversation_id}"


@dataclass(frozen=True)
class Answer:
    """What the desk says to a person's message; ``then_model``: her text is also a question
    for the model (she did not answer the département question)."""

    texts: List[str]
    then_model: bool = False


class HandoffDesk:
    def __init__(
        self,
        store: Store,
        handoffs: HandoffStore,
        directory: DirectoryStore,
        redis: Redis,
        catalogs: Catalogs,
        signals: Signals,
        clock: Callable[[], datetime] = utcnow,
        discretion: Optional[Discretion] = None,
        metrics: Optional[Metrics] = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.discretion = discretion
        self.handoffs = handoffs
        self.directory = directory
        self.redis = redis
        self.catalogs = catalogs
        self.signals = signals
        self.clock = clock

    # -- the person's side ----------------------------------------------------------------

    async def before_model(self, message: Inbound, conversation: ConversationRef, language: str) -> Optional[Answer]:
        """Handle what the desk understands without the model: an answer to the département
        question, a cancellation, plain words asking for a person. None: not for the desk."""
        key = _departement_key(conversation.id)
        attempts = await self.redis.get(key)
        if attempts is not None and self.signals.cancels(message.text):
            # she changed her mind while asked her département: no request
            await self.redis.delete(key)
            return Answer([self._say(CANCELLED, language)])
        if attempts is not None:
            return await self._departement_answer(message, conversation, language, int(attempts))
        if conversation.state == REQUESTED and self.signals.cancels(message.text):
            answer = await self.cancel(conversation.id, language)
            return Answer(answer) if answer else None
        if self.signals.asks_for_human(message.text):
            return Answer(await self.request(conversation, language, departements.stated(message.text)))
        return None

    async def _departement_answer(
        self, message: Inbound, conversation: ConversationRef, language: str, attempts: int
    ) -> Answer:
        key = _departement_key(conversation.id)
        said = departements.find(message.text)
        refused = message.text.strip() in NOT_SAYING
        if said is None and not refused and attempts < 1:
            await self.redis.set(key, "1", ex=DEPARTEMENT_TTL_S)
            # what she wrote instead may be a question (or danger): the model answers it too
            return Answer([self._say(DEPARTEMENT_AGAIN, language)], then_model=not _NUMBERISH.match(message.text))
        await self.redis.delete(key)
        texts = await self.request(conversation, language, said, departement_asked=True)
        # a second answer that is no département is taken as a question of its own
        return Answer(texts, then_model=said is None and not refused)

    async def request(
        self,
        conversation: ConversationRef,
        language: str,
        departement: Optional[str] = None,
        departement_asked: bool = False,
    ) -> List[str]:
        """She asks for a person: route, open the request, tell her when a human will write."""
        existing = await self.store.run(self.handoffs.open_for, conversation.id)
        if existing is not None:
            return [self._say(ALREADY_WAITING, language)]
        directory = await self.store.run(self.directory.load)
        now = self.clock()
        decision: Decision = route(directory, departement, language, now, departement_asked)
        if decision.ask_departement:
            await self.redis.set(_departement_key(conversation.id), "0", ex=DEPARTEMENT_TTL_S)
            return [self._say(ASK_DEPARTEMENT, language)]
        association = decision.association
        if association is None:
            log.warning("a request for a person found no association (%s)", decision.reason)
            self.metrics.handoff("no_association")
            unrouted = statistics.Count(statistics.HANDOFF_UNROUTED, language=language)
            await self.store.run(statistics.Statistics(self.store.sessions).record, [unrouted])
            return [self._say(NO_ASSOCIATION, language)]
        urgent, minor = await self._flags(conversation.id)
        pending = await self._pending_exit_topics(conversation.id) if departement else {}
        counts = [
            statistics.Count(statistics.TOPIC_DEPARTEMENT, topic=topic, departement=departement or "")
            for topic, times in pending.items()
            for _ in range(times)
        ]
        ref = await self.store.run(
            self.handoffs.request, conversation.id, association.slug, language, departement, urgent, minor, counts
        )
        if departement:
            await self._said_departement(conversation.id, departement, list(pending))
        self.metrics.handoff("requested")
        await self.publish(ref.association, "request", ref.id)
        if decision.open_now or decision.opens_at is None:
            return [self._say(REQUESTED_OPEN, language, association=association.name)]
        day, time = self.when(decision.opens_at, language)
        return [self._say(REQUESTED_CLOSED, language, association=association.name, day=day, time=time)]

    async def cancel(self, conversation_id: int, language: str) -> List[str]:
        ref = await self.store.run(self.handoffs.open_for, conversation_id)
        if ref is None or not await self.store.run(self.handoffs.cancel, conversation_id):
            return [self._say(ALREADY_WAITING, language)] if ref is not None else []
        self.metrics.handoff("cancelled")
        await self.publish(ref.association, "cancelled", ref.id)
        return [self._say(CANCELLED, language)]

    async def note_replies(self, conversation: ConversationRef, texts: Sequence[str], language: str) -> None:
        """Remember that the model saw danger or a minor in this conversation (its danger or
        minor answer was sent), to flag her request to staff now or later."""
        urgent = self.catalogs.render("utter_danger", language) in texts
        minor = self.catalogs.render("utter_minor", language) in texts
        await self.flag(conversation.id, urgent, minor)

    async def flag(self, conversation_id: int, urgent: bool, minor: bool) -> None:
        """Danger (``urgent``) or a minor seen in the conversation: flag her open request now
        (the consoles are told) and any request she makes within a week."""
        if not (urgent or minor):
            return
        key = _flags_key(conversation_id)
        await self.redis.hset(key, mapping={**({"urgent": "1"} if urgent else {}), **({"minor": "1"} if minor else {})})
        await self.redis.expire(key, FLAGS_TTL_S)
        ref = await self.store.run(self.handoffs.flag, conversation_id, urgent, minor)
        if ref is not None:
            await self.publish(ref.association, "flag", ref.id)

    async def flags(self, conversation_id: int) -> Set[str]:
        """ "urgent", "minor": what was seen in the conversation this past week."""
        return set(await self.redis.hkeys(_flags_key(conversation_id)))

    # -- statistics of the exit pathway and papers by département ---------------------------
    # Her questions on these topics are counted by the département she gives when she asks for
    # a person: a question asked before is remembered (how many, per topic; in the flags hash,
    # a week, erased with her) until she gives it; one asked after is counted with it at once.

    async def departement_said(self, conversation_id: int) -> Optional[str]:
        """The département she gave this past week, if any (for the statistics only)."""
        value = await self.redis.hget(_flags_key(conversation_id), "departement")
        return value if value in departements.DEPARTEMENTS else None

    async def remember_exit_topics(self, conversation_id: int, topics: Sequence[str]) -> None:
        """Questions on the exit pathway or papers before she gave a département."""
        key = _flags_key(conversation_id)
        for topic in topics:
            if topic in statistics.EXIT_TOPICS:
                await self.redis.hincrby(key, f"asked:{topic}", 1)
                await self.redis.expire(key, FLAGS_TTL_S)

    async def _pending_exit_topics(self, conversation_id: int) -> dict:
        flags = await self.redis.hgetall(_flags_key(conversation_id))
        found = {}
        for topic in statistics.EXIT_TOPICS:
            try:
                found[topic] = max(0, min(int(flags.get(f"asked:{topic}") or 0), 100))
            except ValueError:
                continue
        return {topic: times for topic, times in found.items() if times}

    async def _said_departement(self, conversation_id: int, departement: str, counted: List[str]) -> None:
        key = _flags_key(conversation_id)
        await self.redis.hset(key, "departement", departement)
        if counted:
            await self.redis.hdel(key, *(f"asked:{topic}" for topic in counted))
        await self.redis.expire(key, FLAGS_TTL_S)

    async def has_open_request(self, conversation_id: int) -> bool:
        return await self.store.run(self.handoffs.open_for, conversation_id) is not None

    @staticmethod
    def conversation_keys() -> Tuple[str, ...]:
        """Redis keys the desk keeps per conversation (``{id}``), for an erasure."""
        return (f"{queues.PREFIX}:handoff:departement:{{id}}", f"{queues.PREFIX}:handoff:flags:{{id}}")

    async def language_changed(self, conversation_id: int, language: str) -> None:
        """She writes in another language now: her open request follows, so that what she is
        told and the canned replies come in it."""
        ref = await self.store.run(self.handoffs.set_language, conversation_id, language)
        if ref is not None:
            await self.publish(ref.association, "language", ref.id)

    async def conversation_event(self, conversation_id: int, event: str = "message") -> None:
        """Tell the consoles that a conversation with an open request has something new."""
        ref = await self.store.run(self.handoffs.open_for, conversation_id)
        if ref is not None:
            await self.publish(ref.association, event, ref.id)

    async def _flags(self, conversation_id: int) -> Tuple[bool, bool]:
        flags = await self.redis.hgetall(_flags_key(conversation_id))
        return flags.get("urgent") == "1", flags.get("minor") == "1"

    # -- the staff's side -----------------------------------------------------------------

    async def claim(self, ref: HandoffRef, staff: str, association_name: str) -> bool:
        if not await self.store.run(self.handoffs.claim, ref.id, staff, ref.association):
            return False
        self.metrics.handoff("claimed", ref.requested_at)
        await self._tell(ref, CLAIMED, association=association_name)
        await self.publish(ref.association, "claimed", ref.id)
        return True

    async def take_over(self, ref: HandoffRef, staff: str) -> bool:
        if not await self.store.run(self.handoffs.take_over, ref.id, staff, ref.association, ref.claimed_by):
            return False
        self.metrics.handoff("taken_over")
        await self.publish(ref.association, "claimed", ref.id)
        return True

    def opening_problem(self, text: str) -> List[str]:
        """The sensitive words a lock screen would show at the start of a staff reply."""
        if self.discretion is None:
            return []
        return sorted(set(self.discretion.sensitive_in(opening(text))))

    async def discreet_problem(self, ref: HandoffRef, text: str) -> List[str]:
        """The sensitive words that keep a staff reply from a contact in discreet mode (what
        her language's neutral pieces cannot replace); [] when it may go."""
        if self.discretion is None:
            return []
        conversation = await self.store.run(self.store.conversation, ref.conversation_id)
        if conversation is None or not conversation.discreet:
            return []
        if self.discretion.discreet(text, conversation.language or ref.language) is not None:
            return []
        return sorted(set(self.discretion.sensitive_in(text)))

    async def reply(self, ref: HandoffRef, staff: str, text: str) -> Optional[int]:
        message_id = await self.store.run(self.handoffs.staff_reply, ref.id, staff, ref.association, text)
        if message_id is None:
            return None
        await self.redis.delete(erase_pending_key(ref.conversation_id))  # her next "oui" answers the staff
        await queues.notify_outbox(self.redis, message_id)
        await queues.publish_conversation(self.redis, ref.conversation_id)
        await self.publish(ref.association, "reply", ref.id)
        return message_id

    async def release(self, ref: HandoffRef, staff: str) -> bool:
        if not await self.store.run(self.handoffs.release, ref.id, staff, ref.association):
            return False
        self.metrics.handoff("released")
        await self._tell(ref, ENDED)
        await self.publish(ref.association, "released", ref.id)
        return True

    async def close(self, ref: HandoffRef, staff: str, outcome: str) -> bool:
        if not await self.store.run(self.handoffs.close, ref.id, staff, ref.association, outcome):
            return False
        self.metrics.handoff("closed")
        self.metrics.handoff_outcome(outcome)
        await self._tell(ref, ENDED)
        await self.publish(ref.association, "closed", ref.id)
        return True

    async def alert_unclaimed(self, unclaimed_for: timedelta) -> int:
        """Alert the consoles again about requests nobody claimed for ``unclaimed_for``."""
        due = await self.store.run(self.handoffs.due_for_alert, unclaimed_for, unclaimed_for)
        for ref in due:
            self.metrics.handoff("alerted")
            await self.publish(ref.association, "alert", ref.id)
        if due:
            log.info("%d request(s) still unclaimed: consoles alerted again", len(due))
        return len(due)

    async def alert_unanswered(self, unanswered_for: timedelta) -> int:
        """Alert the consoles about held conversations where she has waited for a reply for
        ``unanswered_for``: a colleague can take over."""
        due = await self.store.run(self.handoffs.due_for_unanswered_alert, unanswered_for)
        for ref in due:
            await self.publish(ref.association, "alert", ref.id)
        if due:
            log.info("%d held conversation(s) without a reply: consoles alerted", len(due))
        return len(due)

    async def _tell(self, ref: HandoffRef, source: str, **values: object) -> None:
        text = self._say(source, ref.language, **values)
        message_id = await self.store.run(self.handoffs.notice, ref.conversation_id, text, ref.language)
        if message_id is not None:
            await queues.notify_outbox(self.redis, message_id)
            await queues.publish_conversation(self.redis, ref.conversation_id)

    # -- shared ---------------------------------------------------------------------------

    async def publish(self, association: str, event: str, handoff_id: int) -> None:
        payload = json.dumps({"type": event, "handoff": handoff_id})
        await self.redis.publish(console_channel(association), payload)

    def _say(self, source: str, language: str, **values: object) -> str:
        context = CONTEXTS[source]
        return fill(self.catalogs.translate(language, context, source), values)

    @staticmethod
    def when(moment: datetime, language: str) -> Tuple[str, str]:
        """The day and time of ``moment`` as she reads them in her language."""
        locale = Locale.parse(BABEL_LOCALES.get(language, language))
        skeletons = locale.datetime_skeletons
        pattern = str(skeletons[match_skeleton("MMMMEd", skeletons) or "MMMMEd"])
        # the locale's pattern for "weekday day month", with the weekday written in full
        pattern = _MONTH.sub("MMMM", _WEEKDAY.sub("EEEE", pattern))
        day = format_date(moment, pattern, locale=locale)
        time = format_time(moment, "short", tzinfo=moment.tzinfo, locale=locale)
        # narrow and non-breaking spaces would make an SMS UCS-2 (twice as many segments)
        return _SPACES.sub(" ", day), _SPACES.sub(" ", time)


CONTEXTS = {
    ASK_DEPARTEMENT: "handoff_ask_departement",
    DEPARTEMENT_AGAIN: "handoff_departement_again",
    REQUESTED_OPEN: "handoff_requested_open",
    REQUESTED_CLOSED: "handoff_requested_closed",
    ALREADY_WAITING: "handoff_already_waiting",
    NO_ASSOCIATION: "handoff_unavailable",
    CANCELLED: "handoff_cancelled",
    CLAIMED: "handoff_claimed",
    ENDED: "handoff_ended",
}
