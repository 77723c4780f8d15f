"""Handing one MT frame to a vessel's satellite network: the RockBLOCK MT API, Inmarsat IDP
``submit_messages`` or Iridium DirectIP MT, chosen by the vessel's registered network.

It owns the per-network request and what counts as accepted; it must not choose which frame to send
or when (the relay builds frames, ``shore.service`` runs the MT loop and retries).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass

import httpx

from common.clock import Clock
from firmware_profiles import load_profile

from .archive import Archive, Vessel
from .config import ShoreConfig
from .directip import MtMessage
from .directip_server import send_mt
from .idp_poller import FORWARD_STATES, IdpApiError, IdpClient
from .idp_poller import NETWORK as IDP_NETWORK
from .relay_mt import MtFrame

log = logging.getLogger("shore")


def idp_sin() -> int:
    sin = load_profile("inmarsat-idp").limits.sin
    if sin is None:
        raise ValueError("the inmarsat-idp profile names no SIN")
    return sin


@dataclass
class MtDelivery:
    """The clients and counters one MT hand-over needs."""

    config: ShoreConfig
    archive: Archive
    clock: Clock
    http: httpx.AsyncClient
    idp_client: IdpClient | None
    rejections: Counter[str]

    async def deliver(self, vessel: Vessel, frame: MtFrame) -> tuple[bool, str]:
        """Hand one MT frame to the vessel's network. Returns (accepted, detail)."""
        cfg = self.config
        if vessel.network == "rockblock":
            r = await self.http.post(
                cfg.rockblock.mt_url,
                data={
                    "imei": vessel.imei,
                    "username": cfg.rockblock.username,
                    "password": cfg.rockblock.password,
                    "data": frame.data.hex(),
                },
            )
            text = r.text.strip()[:200]
            return r.status_code == 200 and text.startswith("OK"), text
        if vessel.network == "inmarsat-idp":
            if self.idp_client is None:
                return False, "no IDP API configured"
            try:
                subs = await self.idp_client.submit_messages(
                    [(vessel.imei, frame.counter & 0x7FFFFFFF, bytes([idp_sin()]) + frame.data)]
                )
            except IdpApiError as exc:
                self.rejections[exc.reason] += 1
                return False, str(exc)
            if len(subs) != 1 or subs[0].error_id != 0:
                return False, f"submission refused: {subs[0].error_id if subs else 'none'}"
            await asyncio.to_thread(
                self.archive.add_submission,
                vessel.network,
                str(subs[0].forward_id),
                vessel.imei,
                frame.counter,
                self.clock.now(),
            )
            return True, f"forward message {subs[0].forward_id}"
        message = MtMessage(
            client_message_id=(frame.counter & 0xFFFFFFFF).to_bytes(4, "big"),
            imei=vessel.imei,
            payload=frame.data,
        )
        confirmation = await send_mt(
            cfg.directip.mt_host, cfg.directip.mt_port, message, timeout_s=cfg.directip.read_timeout_s
        )
        return confirmation.status >= 0, f"status {confirmation.status}"

    async def close_idp_submissions(self) -> bool:
        """Close IDP forward submissions the network finished; True if some failed (their units are
        resent, so the MT loop has work)."""
        assert self.idp_client is not None
        open_subs = await asyncio.to_thread(self.archive.open_submissions, IDP_NETWORK)
        if not open_subs:
            return False
        try:
            statuses = await self.idp_client.get_forward_statuses([int(ref) for ref, _i, _c in open_subs])
        except IdpApiError as exc:
            self.rejections[exc.reason] += 1
            log.warning("IDP forward statuses: %s", exc)
            return False
        resend = False
        for status in statuses:
            if not status.is_closed:
                continue
            name = FORWARD_STATES.get(status.state, str(status.state))
            failed = status.state != 1
            if failed:
                self.rejections[f"idp-forward-{name}"] += 1
                log.warning("IDP forward message %d ended %s: resending its units", status.forward_id, name)
            await asyncio.to_thread(
                self.archive.close_submission, IDP_NETWORK, str(status.forward_id), name, failed
            )
            resend = resend or failed
        return resend
