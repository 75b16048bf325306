"""Router worker: answers inbound messages, one conversation at a time, in order.

For each notification on the inbox stream (consumer group ``router``) the worker takes the
conversation's lock and handles every unanswered inbound message of that conversation, oldest
first: language, then Rasa, then the replies go to the SQL outbox in the same transaction that
marks the message done, then the sender is notified. Durability:

* a worker that dies leaves its stream entries pending: another claims them after a while;
* a sweeper re-queues inbox rows left unanswered (lost notification, Redis restart);
* while Rasa is down the message stays unanswered and is retried; the person gets no error.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import timedelta
from typing import List, Optional, Set, Tuple

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import erasure, inbox, queues, statistics
from bot.erasure import ERASE_PENDING
from bot.guard import Guard, Verdict
from bot.handoff import departements
from bot.handoff.desk import HandoffDesk
from bot.i18n import Catalogs
from bot.language import LanguageChooser
from bot.language_menu import LanguageMenu
from bot.metrics import Metrics
from bot.notices import FLOOD_NOTICE, MEDIA_NOTICE
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.safety_texts import ADVICE, ERASED
from bot.store import ConversationRef, Inbound, Store
from bot.tasks import stop as stop_tasks
from bot.text import split_message, to_rasa

NOTICES = {inbox.MEDIA: MEDIA_NOTICE, inbox.FLOOD: FLOOD_NOTICE}
# The longest text one message may carry on a channel: longer answers are queued as several
# outbox rows, each sent (and retried) on its own.
MESSAGE_LIMITS = {"telegram": 4096}
HUMAN_HOLDS = "claimed"  # conversation state while a staff member holds it (bot/handoff/states.py)

log = logging.getLogger(__name__)


class Router:
    def __init__(
        self,
        store: Store,
        redis: Redis,
        rasa: RasaClient,
        chooser: LanguageChooser,
        *,
        concurrency: int = 8,
        sweep_after: float = 30.0,
        claim_idle_ms: int = 60_000,
        rasa_retry_for: float = 20.0,
        consumer: Optional[str] = None,
        language_menu: Optional[LanguageMenu] = None,
        catalogs: Optional[Catalogs] = None,
        menu_ttl_s: int = 900,
        desk: Optional[HandoffDesk] = None,
        guard: Optional[Guard] = None,
        metrics: Optional[Metrics] = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.desk = desk
        self.guard = guard
        self.language_menu = language_menu
        self.catalogs = catalogs
        self.menu_ttl_s = menu_ttl_s
        self.redis = redis
        self.rasa = rasa
        self.chooser = chooser
        self.consumer = consumer or f"router-{socket.gethostname()}-{id(self):x}"
        self.sweep_after = sweep_after
        self.claim_idle_ms = claim_idle_ms
        self.rasa_retry_for = rasa_retry_for
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: Set[asyncio.Task[None]] = set()

    # -- the loops ------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume the inbox stream until cancelled; also claims and sweeps."""
        await self._until_ready()
        extra = [asyncio.create_task(self._sweep_loop()), asyncio.create_task(self._claim_loop())]
        try:
            while True:
                try:
                    entries = await queues.read_group(
                        self.redis, queues.INBOX, queues.ROUTER_GROUP, self.consumer, count=16, block_ms=1000
                    )
                except RedisError as error:
                    log.warning("router cannot read the inbox stream (%s); retrying", type(error).__name__)
                    self.metrics.error("router", error)
                    await asyncio.sleep(1.0)
                    await self._until_ready()
                    continue
                for entry in entries:
                    await self._spawn(entry)
        finally:
            await stop_tasks(extra + list(self._tasks))

    async def _until_ready(self) -> None:
        while True:
            try:
                await queues.ensure_group(self.redis, queues.INBOX, queues.ROUTER_GROUP)
                return
            except RedisError:
                await asyncio.sleep(1.0)

    async def _spawn(self, entry: queues.Entry) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._handle_entry(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _t: self._slots.release())

    async def _handle_entry(self, entry: queues.Entry) -> None:
        entry_id, fields = entry
        try:
            conversation_id = int(fields["c"])
        except (KeyError, ValueError):
            await queues.ack(self.redis, queues.INBOX, queues.ROUTER_GROUP, entry_id)
            return
        try:
            await self.handle_conversation(conversation_id)
        except queues.LockBusy:
            return  # another worker holds it; the entry stays pending and is claimed later
        except Exception as error:
            log.exception("router failed on conversation %s; the sweeper will retry", conversation_id)
            self.metrics.error("router", error)
            return
        await queues.ack(self.redis, queues.INBOX, queues.ROUTER_GROUP, entry_id)

    async def _claim_loop(self) -> None:
        while True:
            await asyncio.sleep(max(self.claim_idle_ms / 4000, 0.5))
            try:
                entries = await queues.claim_idle(
                    self.redis, queues.INBOX, queues.ROUTER_GROUP, self.consumer, self.claim_idle_ms
                )
            except RedisError:
                continue
            for entry in entries:
                await self._spawn(entry)

    async def _sweep_loop(self) -> None:
        interval = max(min(self.sweep_after / 3, 10.0), 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception as error:  # keep sweeping whatever happens
                log.warning("sweep failed (%s)", type(error).__name__)
                self.metrics.error("router", error)

    async def sweep(self) -> int:
        """Notify again every inbound message left unanswered too long; returns how many."""
        stale = await self.store.run(self.store.stale_inbound, timedelta(seconds=self.sweep_after))
        for message_id, conversation_id in stale:
            await queues.notify_inbox(self.redis, conversation_id, message_id)
        if stale:
            log.info("sweeper re-queued %d unanswered message(s)", len(stale))
        return len(stale)

    # -- handling -------------------------------------------------------------------------

    async def handle_conversation(self, conversation_id: int) -> int:
        """Answer every unanswered message of a conversation, in order; returns how many."""
        handled = 0
        async with queues.conversation_lock(self.redis, conversation_id):
            while True:
                pending = await self.store.run(self.store.pending_inbound, conversation_id)
                if not pending:
                    return handled
                for message in pending:
                    erased = await self.handle_message(message)
                    handled += 1
                    if erased:  # everything of hers is gone, the rest of this batch included
                        return handled

    async def handle_message(self, message: Inbound) -> bool:
        """Answer one message; True if it erased the conversation."""
        conversation = await self.store.run(self.store.conversation, message.conversation_id)
        if conversation is None:
            return False
        if conversation.erased:  # written as she erased: nothing of it is kept or answered
            await self.store.run(self.store.complete_inbound, message.id, [], None)
            return False
        if conversation.discreet:  # she wrote: what was kept back during her silence goes now
            for held in await self.store.run(self.store.release_held, conversation.id):
                await queues.notify_outbox(self.redis, held)
        if message.kind in NOTICES:
            await self._answer_notice(message, NOTICES[message.kind], conversation.language or self.chooser.default)
            return False
        chosen, menu_text = await self._explicit_language(message, conversation.language)
        if chosen is not None:
            language = chosen
        else:
            language = await self.store.run(self.chooser.choose, message.text, conversation.language)
        if language != conversation.language:
            await self.store.run(self.store.set_language, conversation.contact_id, language)
            if self.desk is not None and conversation.state != "bot":
                await self.desk.language_changed(conversation.id, language)
        verdict = None
        if self.guard is not None and chosen is None and menu_text is None and message.kind != inbox.START:
            verdict = await self.guard.check(message, conversation, language)
        if verdict is not None and verdict.erase_now:
            await self._erase(conversation, language, tell=not verdict.silent)
            return True
        counts = _verdict_counts(verdict)
        if verdict is not None and self.desk is not None:
            await self.desk.flag(conversation.id, verdict.urgent, verdict.minor)
        if verdict is not None and verdict.discreet is not None:
            await self.store.run(self.store.set_discreet, conversation.contact_id, verdict.discreet)
        if conversation.state == HUMAN_HOLDS:
            # a staff member holds the conversation: the bot says nothing, the console shows it;
            # but a wish to erase is still asked (her right) and danger still gets 17/112/114
            asked = []
            if verdict is not None and verdict.asks_erasure:
                asked = verdict.texts
            elif verdict is not None and verdict.urgent and self.catalogs is not None:
                asked = [self.catalogs.render("utter_danger", language)]  # 17/112/114 whoever holds it
            ids = await self.store.run(self.store.complete_inbound, message.id, asked, language, True, counts)
            if ids:
                self.metrics.reply(message.received_at)
            for outbound_id in ids:
                await queues.notify_outbox(self.redis, outbound_id)
            await queues.publish_conversation(self.redis, message.conversation_id)
            if self.desk is not None:
                await self.desk.conversation_event(message.conversation_id)
            return False
        desk_acted = False
        topics: List[str] = []
        if menu_text is not None:
            texts = [menu_text]
        else:
            # after an explicit choice, the main menu in the new language
            welcome = chosen is not None or message.kind == inbox.START
            answer = None
            if verdict is not None:  # the safety layer wins over the desk and the model
                texts = list(verdict.texts)
                if verdict.request_person and self.desk is not None:
                    texts += await self.desk.request(conversation, language, departements.stated(message.text))
                desk_acted = True
            else:
                if self.desk is not None and not welcome:
                    answer = await self.desk.before_model(message, conversation, language)
                texts = answer.texts if answer is not None else []
                desk_acted = answer is not None
                if answer is None or answer.then_model:
                    rasa_text = "/greet" if welcome else to_rasa(message.text)
                    answered, responses = await self._model_answer(message, conversation, rasa_text, language)
                    texts += answered
                    topics = await self._topic_counts(conversation, responses, counts)
                if self.guard is not None:
                    texts = await self.guard.for_a_minor(conversation, texts, language)
        if self.desk is not None:
            await self.desk.note_replies(conversation, texts, language)
        limit = MESSAGE_LIMITS.get(conversation.channel)
        if limit is not None:
            texts = [part for text in texts for part in split_message(text, limit)]
        outbound_ids = await self.store.run(self.store.complete_inbound, message.id, texts, language, False, counts)
        if topics and self.desk is not None:  # asked before she gave a département: kept for later
            await self.desk.remember_exit_topics(conversation.id, topics)
        if outbound_ids:
            self.metrics.reply(message.received_at)
        for outbound_id in outbound_ids:
            await queues.notify_outbox(self.redis, outbound_id)
        await queues.publish_conversation(self.redis, message.conversation_id)
        if self.desk is not None and (desk_acted or conversation.state != "bot"):
            await self.desk.conversation_event(message.conversation_id)
        return False

    async def _erase(self, conversation: ConversationRef, language: str, tell: bool = True) -> None:
        """Erase everything about her (bot/erasure.py), tell her, and tell the consoles."""
        confirmation = None  # the web chat's page says it itself when its session is gone
        channel = conversation.channel
        if tell and self.catalogs is not None and channel in ADVICE and channel != "webchat":
            done = self.catalogs.translate(language, "safety_erased", ERASED)
            advice = self.catalogs.translate(language, f"safety_advice_{channel}", ADVICE[channel])
            confirmation = f"{done} {advice}"
        result = await self.store.run(erasure.erase, self.store, conversation.id, confirmation, language)
        if result is None:
            return
        keys: Tuple[str, ...] = (f"{queues.PREFIX}:language-menu:{{id}}", ERASE_PENDING)
        if self.desk is not None:
            keys += self.desk.conversation_keys()
        await self._forget_in_redis(result, keys)
        if result.outbound_id is not None:
            await queues.notify_outbox(self.redis, result.outbound_id)
        await queues.publish_conversation(self.redis, conversation.id)
        if self.desk is not None:
            for handoff_id, association in result.handoffs:
                await self.desk.publish(association, "erased", handoff_id)
        log.info("conversation %s erased at the person's request", conversation.id)

    async def _forget_in_redis(self, result: erasure.Erasure, keys: Tuple[str, ...]) -> None:
        """Her tracker and keys in Redis: the SQL part is done and cannot be redone, so a Redis
        failure here is retried (about a minute) rather than left to the message's retry."""
        delay = 0.5
        for attempt in range(8):
            try:
                await erasure.forget_in_redis(self.redis, result, keys)
                return
            except RedisError as error:
                if attempt == 7:
                    log.error("erasure: her Redis keys could not be deleted (%s)", type(error).__name__)
                    self.metrics.error("erasure", error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    async def _model_answer(
        self, message: Inbound, conversation: ConversationRef, text: str, language: str
    ) -> Tuple[List[str], List[str]]:
        """Rasa's answer and the names of its responses (the NLG endpoint gives them, for the
        statistics); when the model recognised a request for a person (the payload of
        ``action_request_human``), the desk's answer to it."""
        replies = await self._ask_rasa(conversation.public_id, text, language)
        texts = [str(reply["text"]) for reply in replies if reply.get("text")]
        customs = [r["custom"] for r in replies if isinstance(r.get("custom"), dict)]
        responses = [str(c["response"]) for c in customs if isinstance(c.get("response"), str)]
        asked = any(c.get("handoff") == "request" for c in customs)
        if asked and self.desk is not None:
            texts += await self.desk.request(conversation, language, departements.stated(message.text))
        return texts, responses

    async def _topic_counts(
        self, conversation: ConversationRef, responses: List[str], counts: List[statistics.Count]
    ) -> List[str]:
        """Add the topics and flags of the model's answer to ``counts``; returns the exit
        pathway and papers topics still waiting for her département."""
        topics, flags = statistics.topics_of(responses)
        counts += [statistics.Count(statistics.TOPIC, topic=topic) for topic in topics]
        counts += [statistics.Count(statistics.FLAG, value=flag) for flag in flags]
        exits = [topic for topic in topics if topic in statistics.EXIT_TOPICS]
        if not exits or self.desk is None:
            return []
        said = await self.desk.departement_said(conversation.id)
        if said is None:
            return exits
        counts += [statistics.Count(statistics.TOPIC_DEPARTEMENT, topic=t, departement=said) for t in exits]
        return []

    async def _answer_notice(self, message: Inbound, notice: str, language: str) -> None:
        """A photo or sound is not read, a flood is slowed down: say so, in her language,
        without the model."""
        text = self.catalogs.translate(language, "sms", notice) if self.catalogs else notice
        outbound_ids = await self.store.run(self.store.complete_inbound, message.id, [text], language)
        if outbound_ids:
            self.metrics.reply(message.received_at)
        for outbound_id in outbound_ids:
            await queues.notify_outbox(self.redis, outbound_id)

    async def _explicit_language(self, message: Inbound, current: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
        """(language chosen, None) for an explicit choice; (language, menu text) when the
        person asks for the language menu; (None, None) otherwise."""
        menu = self.language_menu
        if menu is None or self.catalogs is None:
            return None, None
        key = f"{queues.PREFIX}:language-menu:{message.conversation_id}"
        menu_shown = await self.redis.get(key)
        chosen = menu.choice(message.text) if menu_shown else menu.named_language(message.text)
        if chosen is not None:
            await self.redis.delete(key)
            return chosen, None
        asked_in = menu.asks_for_menu(message.text)
        if asked_in is not None:
            await self.redis.set(key, "1", ex=self.menu_ttl_s)
            shown_in = current or asked_in
            return shown_in, menu.render(self.catalogs, shown_in)
        if menu_shown:
            await self.redis.delete(key)  # she wrote something else: the menu is over
        return None, None

    async def _ask_rasa(self, sender: str, text: str, language: str) -> list:
        delay = 0.5
        clock = asyncio.get_running_loop().time
        deadline = clock() + self.rasa_retry_for
        while True:
            started = clock()
            try:
                replies = await self.rasa.send(sender, text, {"language": language})
                self.metrics.rasa_call(clock() - started, ok=True)
                return replies
            except RasaUnavailable as error:
                self.metrics.rasa_call(clock() - started, ok=False)
                if clock() + delay > deadline:
                    log.warning("Rasa unavailable (%s); the message waits for the sweeper", error)
                    self.metrics.error("router", error)
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _verdict_counts(verdict: Optional[Verdict]) -> List[statistics.Count]:
    """What the safety layer's verdict counts: danger and minor flags, an erasure asked,
    discreet mode turned on."""
    if verdict is None:
        return []
    counts = []
    if verdict.urgent:
        counts.append(statistics.Count(statistics.FLAG, value="danger"))
    if verdict.minor:
        counts.append(statistics.Count(statistics.FLAG, value="minor"))
    if verdict.asks_erasure:
        counts.append(statistics.Count(statistics.TOPIC, topic="erasure"))
    if verdict.discreet:
        counts.append(statistics.Count(statistics.TOPIC, topic="discreet"))
    return counts
