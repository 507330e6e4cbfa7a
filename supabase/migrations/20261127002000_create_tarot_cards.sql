-- The 78 cards the server draws from, mirroring shared/deck (ids and names). Cards are drawn in
-- SQL, inside the transaction that charges for the reading, so the drawn cards are stored with
-- the job and every retry reads the same ones. The rows come from the deck data through a
-- generated seed migration (python -m ops.deck_seed); a test checks that table and deck agree.

create table public.tarot_cards (
  id text primary key check (id ~ '^[a-z]+-[0-9]{2}-[a-z-]+$'),
  suit text not null check (suit in ('major', 'wands', 'cups', 'swords', 'pentacles')),
  number integer not null check (number between 0 and 21),
  name_th text not null check (char_length(name_th) between 1 and 100),
  name_en text not null check (char_length(name_en) between 1 and 100),
  constraint tarot_cards_suit_number_key unique (suit, number)
);

alter table public.tarot_cards enable row level security;

-- Reference data for the server side only: the app learns card names from its readings.
revoke all on table public.tarot_cards from public, anon, authenticated, service_role;
grant select on table public.tarot_cards to service_role;
