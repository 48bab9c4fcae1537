-- Uploaded profile photos. The original is stored at upload; the
-- image-resize job makes the three sizes and sets `state`.
create table photos (
    photo_id     uuid primary key,
    user_id      uuid not null references users (user_id) on delete cascade,
    -- processing → ready, or failed with `error` (the image could not be used).
    state        text not null default 'processing'
                 constraint photos_state_check check (state in ('processing', 'ready', 'failed')),
    content_type text not null,
    bytes        bigint not null,
    -- Of the upright original, once decoded.
    width        integer,
    height       integer,
    error        text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);

create index photos_user_id_idx on photos (user_id);

-- The photo whose sizes /api/me shows; switched by the job only once all
-- three sizes are stored, so the avatar URLs never point at missing files.
alter table users add column avatar_photo_id uuid references photos (photo_id) on delete set null;
