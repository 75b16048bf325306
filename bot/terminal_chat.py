"""Chat with a running assistant from the terminal, through the public web chat API."""

from __future__ import annotations

import asyncio
import sys
import uuid

import httpx


async def chat(base_url: str) -> int:
    async with httpx.AsyncClient(base_url=base_url, timeout=40) as client:
        try:
            response = await client.post("/webchat/sessions")
        except httpx.HTTPError:
            print(f"No assistant answers at {base_url}. Start it with ./run", file=sys.stderr)
            return 1
        session = response.json()["session"]
        print("Type a message (Ctrl+D to quit).")
        last = 0
        loop = asyncio.get_running_loop()
        while True:
            try:
                text = await loop.run_in_executor(None, input, "> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if not text.strip():
                continue
            posted = await client.post(
                f"/webchat/sessions/{session}/messages",
                json={"text": text},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            if posted.status_code != 202:
                print(f"! {posted.json()['error']['message']}")
                continue
            mine = posted.json()["id"]
            answered = False
            while not answered:
                response = await client.get(f"/webchat/sessions/{session}/messages", params={"after": last, "wait": 25})
                messages = response.json()["messages"]
                if not messages:
                    break
                for message in messages:
                    last = max(last, message["id"])
                    if message["author"] != "user":
                        print(f"\n{message['text']}\n")
                        answered = message["id"] > mine
                # wait briefly for the rest of a multi-part answer
                if answered:
                    more = await client.get(f"/webchat/sessions/{session}/messages", params={"after": last, "wait": 1})
                    for message in more.json()["messages"]:
                        last = max(last, message["id"])
                        if message["author"] != "user":
                            print(f"{message['text']}\n")
