"""What the safety layer says (catalog entries; French is the source).

Each text starts neutrally (a lock screen shows about 40 characters) and names the word she
writes (``PARLER``, ``OUI``, ``EFFACER``): the first ``talk``, ``confirm`` and ``stop`` words of
her language's ``translations/<lang>/safety.yml``; ``METEO``, ``METEO FIN``: the first ``on``
and ``off`` words of ``translations/<lang>/discreet.yml`` (tests check each translation names
them).
The danger and minor answers themselves are the model's (``utter_danger``, ``utter_minor``),
reviewed with the other answers.
"""

from bot.i18n import pgettext

OFFER_PERSON = pgettext(
    "safety_offer_person",
    "Si vous voulez, une personne peut aussi vous écrire ici, en toute discrétion. Écrivez PARLER.",
)
ADULT_ONLY = pgettext(
    "safety_adult_only",
    "Cette information vaut pour les adultes. Avant 18 ans, vous avez droit à une protection : "
    "appelez le 119, gratuit, 24h/24, confidentiel, absent de la facture. Urgence : 17 ou 112, SMS 114.",
)
ERASE_CONFIRM = pgettext(
    "safety_erase_confirm",
    "Tout effacer ? Écrivez OUI et tout ce que vous avez écrit ici sera effacé, avec votre numéro. "
    "Sinon, continuez simplement à écrire.",
)
ERASED = pgettext(
    "safety_erased",
    "C'est fait : plus rien de vous n'est gardé ici. Vous pouvez écrire à nouveau quand vous voulez. "
    "En danger : 17 ou 112, SMS 114.",
)
DISCREET_ON = pgettext(
    "discreet_on",
    "C'est noté. Mes réponses seront courtes et neutres, et je n'écrirai pas après un silence. "
    "Pour revenir aux réponses complètes, écrivez METEO FIN.",
)
DISCREET_OFF = pgettext(
    "discreet_off",
    "C'est noté, je reprends les réponses complètes. Pour des réponses discrètes, écrivez METEO.",
)
DISCREET_FALLBACK = pgettext(
    "discreet_fallback",
    "Je ne peux pas répondre à cela de façon discrète. Pour la réponse complète, écrivez METEO FIN.",
)
ADVICE = {
    "sms": pgettext(
        "safety_advice_sms",
        "Sur votre téléphone, effacez aussi cette conversation : appui long dessus, puis Supprimer.",
    ),
    "whatsapp": pgettext(
        "safety_advice_whatsapp",
        "Sur votre téléphone, effacez aussi cette discussion : appui long dessus, puis Supprimer.",
    ),
    "telegram": pgettext(
        "safety_advice_telegram",
        "Sur votre téléphone, effacez aussi cette discussion : appui long dessus, puis Supprimer la discussion.",
    ),
    "webchat": pgettext(
        "safety_advice_webchat",
        "Sur cet appareil, fermez cette page et effacez l'historique du navigateur.",
    ),
}

# msgctxt of each text (the tests check the catalogs hold exactly these)
CONTEXTS = {
    OFFER_PERSON: "safety_offer_person",
    ADULT_ONLY: "safety_adult_only",
    ERASE_CONFIRM: "safety_erase_confirm",
    ERASED: "safety_erased",
    DISCREET_ON: "discreet_on",
    DISCREET_OFF: "discreet_off",
    DISCREET_FALLBACK: "discreet_fallback",
    **{text: f"safety_advice_{channel}" for channel, text in ADVICE.items()},
}
