-- Where the user's onboarding guide is stored (a storage key), set by the
-- onboarding-pdf job once the file is there; null until then.
alter table users add column onboarding_pdf_key text;
