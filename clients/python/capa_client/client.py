"""A small typed client for capa's gRPC API (``capa.v1``), over the generated stubs in ``capa_client._gen``.

    from capa_client import Client
    with Client("127.0.0.1:50051", token="...") as capa:
        job = capa.submit(["python", "train.py"], gpus=1)
        for event in capa.watch(job.id):
            print(event.state)

Every method raises a :class:`capa_client.CapaError` subclass when the scheduler refuses the call
(:class:`InvalidArgument` with ``violations`` for bad input). Money is integer micro-dollars, as on the wire
(``2_390_000`` = $2.39); the ``*_usd`` keyword arguments take dollars for convenience. The server fills every
field you leave out with its documented default (kind batch, 1 replica, ...).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import grpc

from ._gen.capa.v1 import billing_pb2, billing_pb2_grpc, jobs_pb2, jobs_pb2_grpc, operator_pb2, types_pb2
from ._gen.capa.v1 import operator_pb2_grpc, services_pb2, services_pb2_grpc
from .errors import CapaError, from_rpc_error

#: Job states by name, as ``JobEvent.state`` / ``Job.state`` carry them.
JOB_STATES = {v: k.replace("JOB_STATE_", "") for k, v in types_pb2.JobState.items()}
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_KINDS = {
    "": types_pb2.JOB_KIND_UNSPECIFIED,
    "batch": types_pb2.JOB_KIND_BATCH,
    "training": types_pb2.JOB_KIND_TRAINING,
    "inference": types_pb2.JOB_KIND_INFERENCE,
}


def usd(dollars: Union[int, float, str]) -> int:
    """Dollars → integer micro-dollars (``usd("2.39") == 2_390_000``)."""
    return int(round(float(dollars) * 1_000_000))


def state_name(state: int) -> str:
    """``JOB_STATE_SUCCEEDED`` (an int on the wire) → ``"SUCCEEDED"``."""
    return JOB_STATES.get(state, str(state))


@dataclass(frozen=True)
class LogLine:
    """One chunk of a task's output: ``stream`` is ``"stdout"``, ``"stderr"`` or ``"system"`` (capa's own)."""

    task_id: str
    stream: str
    text: str
    seq: int


_STREAMS = {types_pb2.LOG_STREAM_STDOUT: "stdout", types_pb2.LOG_STREAM_STDERR: "stderr"}


class Client:
    """A connection to one capa scheduler.

    ``addr`` is ``host:port`` (``CAPA_GRPC_ADDR`` for the CLI); ``token`` an API key sent as
    ``authorization: Bearer <token>`` on every call (None = no credential); ``tenant`` the tenant for calls that
    take one ("" = the credential's or the server default). ``timeout`` bounds each unary call, in seconds.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        addr: str = "127.0.0.1:50051",
        token: Optional[str] = None,
        *,
        tenant: str = "",
        timeout: float = 30.0,
        channel: Optional[grpc.Channel] = None,
    ) -> None:
        self.addr = addr
        self.tenant = tenant
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = channel or grpc.insecure_channel(addr)
        self._jobs = jobs_pb2_grpc.JobServiceStub(self._channel)
        self._operator = operator_pb2_grpc.OperatorServiceStub(self._channel)
        self._billing = billing_pb2_grpc.BillingServiceStub(self._channel)
        self._services = services_pb2_grpc.ServiceServiceStub(self._channel)

    # -- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method, request, timeout: Optional[float] = None):
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    # -- jobs ----------------------------------------------------------------------------------------------

    @staticmethod
    def spec(
        command: Sequence[str] = (),
        *,
        gpus: int = 1,
        replicas: int = 0,
        kind: str = "",
        name: str = "",
        gpu_models: Iterable[str] = (),
        regions: Iterable[str] = (),
        exclude_regions: Iterable[str] = (),
        max_price_usd: Union[None, int, float, str] = None,
        budget_usd: Union[None, int, float, str] = None,
        duration_seconds: int = 0,
        priority: int = 0,
        interruptible: bool = False,
        env: Optional[Mapping[str, str]] = None,
        working_dir: str = "",
        node_selector: Optional[Mapping[str, str]] = None,
        fail_if_unschedulable_after_seconds: int = 0,
    ) -> types_pb2.JobSpec:
        """A ``JobSpec``; every argument left out is sent as its zero value and defaulted by the server."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(k for k in _KINDS if k)}, got {kind!r}")
        return types_pb2.JobSpec(
            name=name,
            kind=_KINDS[kind],
            replicas=replicas,
            gpus_per_replica=gpus,
            gpu_models=list(gpu_models),
            regions=list(regions),
            exclude_regions=list(exclude_regions),
            max_price_micros_per_gpu_hour=usd(max_price_usd) if max_price_usd is not None else 0,
            budget_micros=usd(budget_usd) if budget_usd is not None else 0,
            expected_duration_seconds=duration_seconds,
            priority=priority,
            interruptible=interruptible,
            node_selector=dict(node_selector or {}),
            fail_if_unschedulable_after_seconds=fail_if_unschedulable_after_seconds,
            template=types_pb2.TaskTemplate(command=list(command), env=dict(env or {}), working_dir=working_dir),
        )

    def submit(
        self,
        command: Union[Sequence[str], types_pb2.JobSpec],
        *,
        request_id: Optional[str] = None,
        **spec_args,
    ) -> types_pb2.Job:
        """Submits a job; each replica runs ``command`` (argv). Returns the durable job (``job.id``).

        ``command`` may also be a ready ``JobSpec``. ``request_id`` makes retries idempotent (default: random).
        Other keyword arguments are those of :meth:`spec` (``gpus=2, gpu_models=["h100"], max_price_usd=3``).
        """
        spec = command if isinstance(command, types_pb2.JobSpec) else self.spec(command, **spec_args)
        request = jobs_pb2.SubmitJobRequest(
            request_id=request_id if request_id is not None else str(uuid.uuid4()), tenant=self.tenant, spec=spec
        )
        return self._call(self._jobs.SubmitJob, request).job

    def get(self, job_id: str) -> types_pb2.Job:
        """The job as it is now."""
        return self._call(self._jobs.GetJob, jobs_pb2.GetJobRequest(job_id=job_id)).job

    def jobs(self, *, states: Iterable[str] = (), page_size: int = 100) -> Iterator[types_pb2.Job]:
        """Every job of the tenant, newest first, fetched page by page (``states``: e.g. ``["RUNNING"]``)."""
        wanted = [types_pb2.JobState.Value(f"JOB_STATE_{s.upper()}") for s in states]
        token = ""
        while True:
            page = self._call(
                self._jobs.ListJobs,
                jobs_pb2.ListJobsRequest(tenant=self.tenant, states=wanted, limit=page_size, page_token=token),
            )
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def cancel(self, job_id: str, reason: str = "") -> types_pb2.Job:
        """Asks the scheduler to stop the job (idempotent); returns it (``cancel_requested`` set)."""
        return self._call(self._jobs.CancelJob, jobs_pb2.CancelJobRequest(job_id=job_id, reason=reason)).job

    def watch(self, job_id: str) -> Iterator[jobs_pb2.JobEvent]:
        """The job's current state, then every change, ending once it is final.

        Each event has ``state`` (see :func:`state_name`), ``message`` and the whole ``job``.
        """
        stream = self._jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), metadata=self._metadata)
        try:
            for event in stream:
                yield event
                if state_name(event.state) in FINAL_STATES:
                    return
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        finally:
            stream.cancel()

    def wait(self, job_id: str) -> types_pb2.Job:
        """Blocks until the job is final and returns it."""
        last = None
        for event in self.watch(job_id):
            last = event.job
        return last if last is not None else self.get(job_id)

    def logs(self, job_id: str, *, follow: bool = False, task_id: str = "") -> Iterator[LogLine]:
        """The job's output; with ``follow`` it keeps streaming until the job is final."""
        stream = self._jobs.StreamLogs(
            jobs_pb2.StreamLogsRequest(job_id=job_id, follow=follow, task_id=task_id), metadata=self._metadata
        )
        try:
            for line in stream:
                yield LogLine(
                    task_id=line.task_id,
                    stream=_STREAMS.get(line.stream, "system"),
                    text=line.data.decode("utf-8", errors="replace"),
                    seq=line.seq,
                )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        finally:
            stream.cancel()

    # -- marketplace ---------------------------------------------------------------------------------------

    def quote(self, command: Sequence[str] = (), **spec_args) -> jobs_pb2.QuoteResponse:
        """Price and start estimate for a spec, nothing submitted (``feasible_offers``, ``estimated_total_micros``)."""
        spec = self.spec(command, **spec_args)
        return self._call(self._jobs.Quote, jobs_pb2.QuoteRequest(tenant=self.tenant, spec=spec))

    def offers(
        self,
        *,
        gpu_model: str = "",
        region: str = "",
        max_price_usd: Union[None, int, float, str] = None,
        interruptible: bool = False,
        sort_by: str = "",
        page_size: int = 0,
    ) -> List[jobs_pb2.Offer]:
        """The order book: offers aggregated by (region, GPU model); ``region`` is a glob (``"eu-*"``)."""
        out: List[jobs_pb2.Offer] = []
        token = ""
        while True:
            page = self._call(
                self._jobs.ListOffers,
                jobs_pb2.ListOffersRequest(
                    gpu_model=gpu_model,
                    region_glob=region,
                    max_price_micros_per_gpu_hour=usd(max_price_usd) if max_price_usd is not None else 0,
                    interruptible=interruptible,
                    sort_by=sort_by,
                    limit=page_size,
                    page_token=token,
                ),
            )
            out.extend(page.offers)
            token = page.next_page_token
            if not token:
                return out

    def invoice(self, *, job_id: str = "", tenant: Optional[str] = None) -> billing_pb2.GetInvoiceResponse:
        """What the tenant was charged (``lines``, ``total_micros``), optionally for one job."""
        request = billing_pb2.GetInvoiceRequest(tenant=tenant if tenant is not None else self.tenant, job_id=job_id)
        return self._call(self._billing.GetInvoice, request)

    # -- inference services ------------------------------------------------------------------------------

    def apply_service(
        self,
        name: str,
        command: Sequence[str],
        *,
        regions: Mapping[str, "tuple[int, int]"],
        gpus: int = 1,
        gpu_models: Iterable[str] = (),
        http_path: str = "",
        model_version: str = "",
        max_price_usd: Union[None, int, float, str] = None,
        budget_usd: Union[None, int, float, str] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> services_pb2.ApplyServiceResponse:
        """Creates the service or replaces its spec (a new revision); ``changed`` is False when nothing changed.

        Each replica runs ``command`` and must listen on ``$PORT``; ``regions`` maps a region to its
        ``(min_replicas, max_replicas)``; ``http_path`` is the readiness probe ("" = a TCP connect).
        """
        spec = services_pb2.ServiceSpec(
            name=name,
            template=types_pb2.TaskTemplate(command=list(command), env=dict(env or {})),
            readiness=services_pb2.ReadinessProbe(http_path=http_path),
            regions=[
                services_pb2.ServiceRegion(region=region, min_replicas=lo, max_replicas=hi)
                for region, (lo, hi) in regions.items()
            ],
            gpus_per_replica=gpus,
            gpu_models=list(gpu_models),
            max_price_micros_per_gpu_hour=usd(max_price_usd) if max_price_usd is not None else 0,
            budget_micros=usd(budget_usd) if budget_usd is not None else 0,
            model_version=model_version,
        )
        request = services_pb2.ApplyServiceRequest(tenant=self.tenant, spec=spec)
        return self._call(self._services.ApplyService, request)

    def service(self, name: str) -> services_pb2.Service:
        """One service as it is now: spec, revision, per-region status, replicas, recent events."""
        request = services_pb2.GetServiceRequest(tenant=self.tenant, name=name)
        return self._call(self._services.GetService, request).service

    def services(self, *, page_size: int = 100) -> Iterator[services_pb2.Service]:
        """Every service of the tenant, by name, fetched page by page."""
        token = ""
        while True:
            page = self._call(
                self._services.ListServices,
                services_pb2.ListServicesRequest(tenant=self.tenant, limit=page_size, page_token=token),
            )
            yield from page.services
            token = page.next_page_token
            if not token:
                return

    def endpoints(self, name: str, *, region: str = "") -> List[services_pb2.Endpoint]:
        """The service's live endpoint set (ready replicas), optionally of one region."""
        out: List[services_pb2.Endpoint] = []
        token = ""
        while True:
            page = self._call(
                self._services.ListEndpoints,
                services_pb2.ListEndpointsRequest(tenant=self.tenant, name=name, region=region, page_token=token),
            )
            out.extend(page.endpoints)
            token = page.next_page_token
            if not token:
                return out

    def delete_service(self, name: str) -> services_pb2.Service:
        """Scales every region to 0; the service is removed once its replicas are gone."""
        request = services_pb2.DeleteServiceRequest(tenant=self.tenant, name=name)
        return self._call(self._services.DeleteService, request).service

    def agents(self, *, region: str = "") -> List[jobs_pb2.AgentInfo]:
        """The agents the scheduler knows (operators)."""
        return list(self._call(self._operator.ListAgents, operator_pb2.ListAgentsRequest(region=region)).agents)


__all__ = ["Client", "CapaError", "LogLine", "FINAL_STATES", "state_name", "usd"]
