"""Django's PostgreSQL backend with a health check that costs no round trip when nothing is wrong.

``CONN_HEALTH_CHECKS`` makes Django check a persistent connection before its first use in each
request or task, with a ``SELECT 1``: a round trip on the path of every API call and every job.
A connection the server has closed (a restart, ``pg_terminate_backend``, an idle timeout) has
something to read on its socket: the server's error message and the end of the stream. So the
check here looks first: an idle connection whose socket has nothing to read is healthy, and
only anything else -- unread data, a transaction left open, a bad status -- gets Django's
``SELECT 1`` (which then closes it if it fails, as before). A peer that vanished without closing
the socket passes both checks alike; the first query then fails and Django drops the connection.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.pool or self.connection is None or not self.health_check_enabled or self.health_check_done:
            return super().close_if_health_check_failed()
        if self._quiet():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _quiet(self) -> bool:
        pgconn = self.connection.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)
