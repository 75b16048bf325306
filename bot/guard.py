"""The safety layer's place in the router: what to answer, flag or erase when the safety check
(bot/safety.py) finds something, before the handoff desk and the model.

* Danger: the emergency answer first (the reviewed ``utter_danger``: 17, 112, SMS 114), then,
  unless a request for a person is already open, the offer of a person (``PARLER``); her open
  request is flagged urgent (the consoles are told).
* A minor: the ``utter_minor`` answer (119, child protection); her request is flagged minor, and
  for a week the answers meant for adults (AFIS, the parcours de sortie, residence permits)
  are replaced by what applies to her.
* A wish to erase (phrases, or ``EFFACER``/``STOP`` alone): a one-word confirmation (``OUI``),
  valid ten minutes; anything else she writes drops it and is answered as usual. ``STOP`` by
  SMS or WhatsApp erases at once: the provider stops every message to her after it, so no
  question could reach her.
* The offer taken (``PARLER`` alone): a request for a person.
* Discreet mode (``METEO`` alone; ``METEO FIN`` ends it, bot/discreet.py): every text sent to her
  is its neutral version (:class:`DiscreetTexts`, applied by the sender), and nothing goes out
  after a silence of hers (the sender keeps it until she writes).

While a staff member holds her conversation the bot stays silent but for two things: the
emergency answer when she writes of danger (the staff member may have left) and an erasure,
still asked and done (her right); danger and a minor are flagged to the staff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from redis.asyncio import Redis

from bot.discreet import Discretion
from bot.erasure import erase_pending_key
from bot.handoff.desk import HandoffDesk
from bot.i18n import Catalogs
from bot.metrics import Metrics
from bot.safety import Safety
from bot.safety_texts import ADULT_ONLY, DISCREET_FALLBACK, DISCREET_OFF, DISCREET_ON, ERASE_CONFIRM, OFFER_PERSON
from bot.store import ConversationRef, Inbound

ERASE_CONFIRM_TTL_S = 600
ADULT_ONLY_RESPONSES = ("utter_afis", "utter_exit_pathway", "utter_exit_pathway_more", "utter_papers")
PROVIDER_STOP_CHANNELS = ("sms", "whatsapp")  # Twilio blocks every message after STOP


@dataclass(frozen=True)
class Verdict:
    texts: List[str] = field(default_factory=list)
    erase_now: bool = False
    silent: bool = False  # erase without a word to her (the provider blocks what follows STOP)
    urgent: bool = False
    minor: bool = False
    request_person: bool = False  # she took the offer: the desk opens a request
    asks_erasure: bool = False  # the texts are the erasure question
    discreet: Optional[bool] = None  # she turned discreet mode on (True) or off (False)


class Guard:
    def __init__(
        self,
        safety: Safety,
        redis: Redis,
        catalogs: Catalogs,
        desk: Optional[HandoffDesk],
        discretion: Optional[Discretion] = None,
        metrics: Optional[Metrics] = None,
    ) -> None:
        self.safety = safety
        self.metrics = metrics or Metrics()
        self.discretion = discretion
        self.redis = redis
        self.catalogs = catalogs
        self.desk = desk

    async def check(self, message: Inbound, conversation: ConversationRef, language: str) -> Optional[Verdict]:
        """What the safety layer does with this message, or None (the desk and the model go on)."""
        text = message.text
        pending = erase_pending_key(conversation.id)
        # one answer only (yes, or she moved on): the question goes whatever she wrote
        if await self.redis.delete(pending) and self.safety.confirms(text, language):
            self.metrics.safety("erased")
            return Verdict(erase_now=True)
        if self.discretion is not None and self.discretion.turns_on(text):
            return Verdict([self._say(DISCREET_ON, "discreet_on", language)], discreet=True)
        if self.discretion is not None and self.discretion.turns_off(text):
            return Verdict([self._say(DISCREET_OFF, "discreet_off", language)], discreet=False)
        finding = self.safety.check(text)
        if finding.danger or finding.minor:
            texts = []
            if finding.danger:
                self.metrics.safety("danger")
                texts.append(self.catalogs.render("utter_danger", language))
            if finding.minor:
                self.metrics.safety("minor")
                texts.append(self.catalogs.render("utter_minor", language))
            if finding.danger and not (self.desk is not None and await self.desk.has_open_request(conversation.id)):
                texts.append(self._say(OFFER_PERSON, "safety_offer_person", language))
            return Verdict(texts, urgent=finding.danger, minor=finding.minor)
        stop_word = self.safety.stops(text)
        if stop_word and conversation.channel in PROVIDER_STOP_CHANNELS and _is_provider_stop(text):
            self.metrics.safety("erasure")
            self.metrics.safety("erased")
            return Verdict(erase_now=True, silent=True)
        if finding.erase or stop_word:
            self.metrics.safety("erasure")
            await self.redis.set(pending, "1", ex=ERASE_CONFIRM_TTL_S)
            return Verdict([self._say(ERASE_CONFIRM, "safety_erase_confirm", language)], asks_erasure=True)
        if self.safety.takes_offer(text) and self.desk is not None:
            return Verdict(request_person=True)
        return None

    async def for_a_minor(self, conversation: ConversationRef, texts: Sequence[str], language: str) -> List[str]:
        """``texts`` with the answers meant for adults replaced, if she said she is a minor."""
        if self.desk is None or "minor" not in await self.desk.flags(conversation.id):
            return list(texts)
        adult = {self.catalogs.render(name, language) for name in ADULT_ONLY_RESPONSES}
        replaced: List[str] = []
        for text in texts:
            instead = self._say(ADULT_ONLY, "safety_adult_only", language) if text in adult else text
            if instead not in replaced:
                replaced.append(instead)
        return replaced

    def _say(self, source: str, context: str, language: str) -> str:
        return self.catalogs.translate(language, context, source)


def _is_provider_stop(text: str) -> bool:
    """Twilio's own opt-out words (it answers them itself and blocks what follows)."""
    return " ".join(text.split()).upper() in {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}


class DiscreetTexts:
    """What a discreet contact is sent instead of a text (the sender's hook): the text with the
    neutral pieces of her language, or, if a sensitive word is left, the neutral fallback."""

    def __init__(self, discretion: Discretion, catalogs: Catalogs) -> None:
        self.discretion = discretion
        self.catalogs = catalogs

    def __call__(self, text: str, language: Optional[str]) -> str:
        language = language or "fr"
        neutral = self.discretion.discreet(text, language)
        if neutral is not None:
            return neutral
        return self.catalogs.translate(language, "discreet_fallback", DISCREET_FALLBACK)
