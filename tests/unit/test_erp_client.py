"""The ERP client tells retryable answers from refusals and reads Retry-After either way."""

import email.utils

import pytest

from engine.erp_client import ErpRejected, ErpRetryLater, _raise_for, parse_retry_after_s


def test_parse_retry_after_reads_seconds_and_http_dates():
    """Seconds are taken as they are; an HTTP date counts from now; junk is no hint."""
    assert parse_retry_after_s("7") == 7.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after_s(date, now_s=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after_s("soon") is None
    assert parse_retry_after_s(None) is None


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_answer_success_raises_nothing(status):
    """2xx (202 too: accepted for later) means the ERP has the batch."""
    _raise_for(status, None, "")


def test_answer_429_is_rate_limited_with_its_retry_after():
    """429 asks for a pause of Retry-After seconds; it is not a failure of the ERP."""
    with pytest.raises(ErpRetryLater) as raised:
        _raise_for(429, "3", "slow down")
    assert raised.value.rate_limited and raised.value.retry_after_s == 3.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_answer_5xx_and_timeout_are_retried(status):
    """Server errors and request timeouts are retried, not parked."""
    with pytest.raises(ErpRetryLater) as raised:
        _raise_for(status, None, "down")
    assert not raised.value.rate_limited


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_answer_other_4xx_is_a_refusal_with_its_body(status):
    """A 4xx other than 429 cannot be fixed by retrying; the body is kept for the DLQ."""
    with pytest.raises(ErpRejected) as raised:
        _raise_for(status, None, '{"error": "lines[0].sku: empty"}')
    assert raised.value.status == status and "lines[0].sku" in raised.value.body
