-- The id of the request that recorded the job (`x-request-id`), so the
-- api's and the worker's logs of one signup can be joined. Null for jobs
-- recorded before it existed or by other producers.
alter table jobs add column request_id text;

-- The W3C `traceparent` of the span that recorded the job, when traces are
-- exported (OTEL_EXPORTER_OTLP_ENDPOINT): the worker's job span continues
-- that trace.
alter table jobs add column trace_parent text;
