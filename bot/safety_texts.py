"""What the safety layer says (catalog entries; French is the source).

Each text starts neutrally (a lock screen shows about 40 characters) and names the word she
writes (``PARLER``, ``OUI``, ``EFFACER``): the first ``talk``, ``confirm`` and ``stop`` words of
her language's ``translations/<lang>/safety.yml`` (a test checks each translation names them).
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
    **{text: f"safety_advice_{channel}" for channel, text in ADVICE.items()},
}
