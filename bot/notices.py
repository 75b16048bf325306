"""What the assistant says about the channel itself, without the model (catalog entries)."""

from bot.i18n import pgettext

# context "sms": these go out by SMS too and have an SMS budget (translations/checks.yml)
MEDIA_NOTICE = pgettext(
    "sms",
    "Je ne lis que le texte : les photos, sons et vidéos ne sont ni lus ni gardés. Écrivez votre question.",
)
# the emergency numbers too: a person in danger may be the one sending message after message
FLOOD_NOTICE = pgettext(
    "sms",
    "Vous avez envoyé beaucoup de messages en peu de temps. "
    "Attendez quelques minutes, puis écrivez votre question en un seul message. "
    "En danger : appelez le 17 ou le 112, ou envoyez un SMS au 114.",
)
