"""Channels: each one normalises what a provider sends and delivers what the bot answers.

A channel never holds dialogue logic: it stores the message in the inbox and notifies the
router; the sender worker calls its ``send`` for each reply.
"""

from bot.channels.base import Channel, SendError, SendErrorKind

__all__ = ["Channel", "SendError", "SendErrorKind"]
