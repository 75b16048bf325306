"""What the assistant says to the person about her request for a person (catalog entries).

French is the source; each sentence is rendered in her language from the catalogs. The word
she writes to cancel (``ANNULER``) is the first ``cancel`` word of her language's
``translations/<lang>/signals.yml``: a test checks that each translation names it.
Every text starts neutrally (what a lock screen shows: no association name in the first 40
characters either) and ends with the emergency numbers when she is left waiting.
"""

from bot.i18n import pgettext

ASK_DEPARTEMENT = pgettext(
    "handoff_ask_departement",
    "D'accord. Pour trouver une association près de vous : dans quel département êtes-vous ? "
    "Écrivez son numéro (par exemple 93) ou le code postal. Pour ne pas le dire, écrivez 0.",
)
DEPARTEMENT_AGAIN = pgettext(
    "handoff_departement_again",
    "Je n'ai pas reconnu le département. Écrivez son numéro (par exemple 75) ou le code postal, "
    "ou 0 pour ne pas le dire. En danger : 17 ou 112, SMS au 114.",
)
REQUESTED_OPEN = pgettext(
    "handoff_requested_open",
    "C'est noté. Une personne va vous répondre ici dès que possible ({association}). "
    "Pour annuler, écrivez ANNULER. En danger : 17 ou 112, SMS au 114.",
)
REQUESTED_CLOSED = pgettext(
    "handoff_requested_closed",
    "C'est noté. Une personne vous répondra ici dès l'ouverture, {day} à {time} ({association} est "
    "fermée en ce moment). Votre demande est gardée. Pour annuler, écrivez ANNULER. "
    "En danger : 17 ou 112, SMS au 114. Pour dormir ce soir : 115.",
)
ALREADY_WAITING = pgettext(
    "handoff_already_waiting",
    "Votre demande est déjà envoyée : une personne va vous répondre ici. Pour annuler, écrivez ANNULER. "
    "En danger : 17 ou 112, SMS au 114.",
)
NO_ASSOCIATION = pgettext(
    "handoff_unavailable",
    "Pour l'instant, aucune association ne peut vous répondre ici. Je reste là pour vos questions. "
    "En danger : 17 ou 112, SMS au 114. Pour dormir ce soir : 115.",
)
CANCELLED = pgettext(
    "handoff_cancelled",
    "C'est fait, votre demande est annulée. Vous pouvez en faire une autre quand vous voulez. "
    "Je reste là pour vos questions : 0 pour le menu.",
)
CLAIMED = pgettext(
    "handoff_claimed",
    "Bonjour. Une personne est là et lit vos messages ({association}). Vous pouvez lui écrire ici.",
)
ENDED = pgettext(
    "handoff_ended",
    "La personne de l'association a terminé. Je reste là pour vos questions : écrivez votre question, "
    "ou 0 pour le menu. En danger : 17 ou 112, SMS au 114.",
)

# Replies a staff member can send in the person's language, reviewed by mediators; the bot's
# own answers (utter_*) are offered too.
CANNED = {
    "canned_hello": pgettext(
        "canned_hello",
        "Bonjour, je travaille à l'association. Je suis là pour vous lire et vous aider. "
        "Vous n'avez pas besoin de donner votre nom.",
    ),
    "canned_safe_now": pgettext(
        "canned_safe_now",
        "Pouvez-vous écrire tranquillement en ce moment ? Si quelqu'un peut lire votre téléphone, "
        "effacez nos messages après. En danger : 17 ou 112, SMS au 114.",
    ),
    "canned_looking": pgettext(
        "canned_looking",
        "Je regarde votre question et je vous réponds ici dans quelques minutes.",
    ),
    "canned_back_soon": pgettext(
        "canned_back_soon",
        "Je dois m'absenter un moment. Je reviens vers vous ici dès que possible. En danger : 17 ou 112, SMS au 114.",
    ),
    "canned_goodbye": pgettext(
        "canned_goodbye",
        "Merci de votre confiance. Vous pouvez nous écrire ici quand vous voulez. En danger : 17 ou 112, SMS au 114.",
    ),
}
