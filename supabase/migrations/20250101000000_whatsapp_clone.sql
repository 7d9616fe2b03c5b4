-- The WhatsApp Clone schema the harness assumes, for a real (staging) Supabase project: `supabase db push`.
-- The reference stack applies this same folder to its own PostgreSQL at start (docs/reference-stack.md), so its
-- tables, policies, trigger and publication are the ones below: there is no second copy of the rules.

-- Tables ---------------------------------------------------------------------------------------------------------

create table if not exists public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  username text unique,
  display_name text,
  avatar_url text,
  status text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists public.conversations (
  id uuid primary key default gen_random_uuid(),
  title text,
  is_group boolean not null default false,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists public.conversation_members (
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member',
  joined_at timestamptz not null default now(),
  primary key (conversation_id, user_id)
);
create index if not exists conversation_members_user_id_idx on public.conversation_members (user_id);

create table if not exists public.messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  sender_id uuid not null references auth.users (id) on delete cascade,
  client_msg_id text not null,
  content text,
  kind text not null default 'text',
  attachment_path text,
  metadata jsonb,
  created_at timestamptz not null default now(),
  -- A retried send carries the same client_msg_id: the second insert conflicts (409) instead of duplicating.
  constraint messages_sender_id_client_msg_id_key unique (sender_id, client_msg_id)
);
create index if not exists messages_conversation_id_created_at_idx on public.messages (conversation_id, created_at);

-- Membership helpers: security definer, so policies on conversation_members do not recurse into themselves. ------

create or replace function public.is_member(conv uuid) returns boolean
language sql stable security definer set search_path = public as $$
  select exists (select 1 from public.conversation_members m where m.conversation_id = conv and m.user_id = auth.uid());
$$;

create or replace function public.created_conversation(conv uuid) returns boolean
language sql stable security definer set search_path = public as $$
  select exists (select 1 from public.conversations c where c.id = conv and c.created_by = auth.uid());
$$;

-- Row-level security (service_role bypasses RLS) ---------------------------------------------------------------

alter table public.profiles enable row level security;
alter table public.conversations enable row level security;
alter table public.conversation_members enable row level security;
alter table public.messages enable row level security;

create policy profiles_select on public.profiles for select to authenticated using (true);
create policy profiles_insert on public.profiles for insert to authenticated with check (id = auth.uid());
create policy profiles_update on public.profiles for update to authenticated
  using (id = auth.uid()) with check (id = auth.uid());
create policy profiles_delete on public.profiles for delete to authenticated using (id = auth.uid());

create policy conversations_select on public.conversations for select to authenticated
  using (public.is_member(id) or created_by = auth.uid());
create policy conversations_insert on public.conversations for insert to authenticated
  with check (created_by = auth.uid());
create policy conversations_update on public.conversations for update to authenticated
  using (public.is_member(id)) with check (public.is_member(id) or created_by = auth.uid());
create policy conversations_delete on public.conversations for delete to authenticated
  using (created_by = auth.uid());

create policy members_select on public.conversation_members for select to authenticated
  using (public.is_member(conversation_id));
create policy members_insert on public.conversation_members for insert to authenticated
  with check (public.is_member(conversation_id) or public.created_conversation(conversation_id));
create policy members_update on public.conversation_members for update to authenticated
  using (public.created_conversation(conversation_id));
create policy members_delete on public.conversation_members for delete to authenticated
  using (user_id = auth.uid() or public.created_conversation(conversation_id));

create policy messages_select on public.messages for select to authenticated
  using (public.is_member(conversation_id));
create policy messages_insert on public.messages for insert to authenticated
  with check (sender_id = auth.uid() and public.is_member(conversation_id));
create policy messages_update on public.messages for update to authenticated
  using (sender_id = auth.uid() and public.is_member(conversation_id))
  with check (sender_id = auth.uid() and public.is_member(conversation_id));
create policy messages_delete on public.messages for delete to authenticated
  using (sender_id = auth.uid() and public.is_member(conversation_id));

-- Profile on sign-up -----------------------------------------------------------------------------------------

create or replace function public.handle_new_user() returns trigger
language plpgsql security definer set search_path = public as $$
begin
  insert into public.profiles (id, username, display_name, avatar_url)
  values (
    new.id,
    case when exists (select 1 from public.profiles p where p.username = new.raw_user_meta_data ->> 'username')
      then null else new.raw_user_meta_data ->> 'username' end,
    coalesce(new.raw_user_meta_data ->> 'display_name', new.raw_user_meta_data ->> 'full_name',
             split_part(new.email, '@', 1)),
    new.raw_user_meta_data ->> 'avatar_url'
  )
  on conflict (id) do nothing;
  return new;
end;
$$;

drop trigger if exists on_auth_user_created on auth.users;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function public.handle_new_user();

-- Realtime: postgres_changes on the app tables ------------------------------------------------------------------

alter publication supabase_realtime add table public.profiles, public.conversations,
  public.conversation_members, public.messages;

-- Storage: attachments/<conversation_id>/<file>; members read and upload, the owner deletes ---------------------

insert into storage.buckets (id, name, public)
values ('attachments', 'attachments', false)
on conflict (id) do nothing;

create policy attachments_read on storage.objects for select to authenticated
  using (bucket_id = 'attachments' and public.is_member(((storage.foldername(name))[1])::uuid));
create policy attachments_upload on storage.objects for insert to authenticated
  with check (bucket_id = 'attachments' and public.is_member(((storage.foldername(name))[1])::uuid));
create policy attachments_delete on storage.objects for delete to authenticated
  using (bucket_id = 'attachments' and owner = auth.uid());
