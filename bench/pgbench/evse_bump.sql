-- The DB floor of scenario (c): one EVSE status update plus the parent location's last_updated bump, found by
-- the same keys and unique indexes the receiver uses (party + location id, location + EVSE uid). -D plocs=<count>.
\set p random(1, :plocs)
WITH loc AS (
    SELECT id FROM locations_location
    WHERE lower(country_code) = 'de' AND lower(party_id) = 'bpc' AND lower(ocpi_id) = lower('PLOC' || lpad(:p::text, 6, '0'))
), evse AS (
    UPDATE locations_evse
    SET status = CASE WHEN status = 'AVAILABLE' THEN 'CHARGING' ELSE 'AVAILABLE' END, last_updated = now()
    WHERE location_id = (SELECT id FROM loc) AND lower(uid) = lower('PLOC' || lpad(:p::text, 6, '0') || '-1')
    RETURNING location_id
)
UPDATE locations_location SET last_updated = now() WHERE id IN (SELECT location_id FROM evse);
