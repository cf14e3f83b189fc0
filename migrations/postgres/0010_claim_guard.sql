-- The guard of a claim ("mark this code used if nobody has") in a write transaction whose
-- statements all travel in one round trip (src/store/postgres.rs): a claim that changed no row
-- raises, which aborts the transaction, so that nothing pipelined behind it takes effect and the
-- COMMIT sent with it rolls back. SQL itself has no way to raise an error; PL/pgSQL is built in.
CREATE FUNCTION tessera_claimed(changed BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
BEGIN
    IF changed <> 1 THEN
        RAISE EXCEPTION 'the claim changed % rows, not one', changed USING ERRCODE = 'TS001';
    END IF;
    RETURN changed;
END
$$;
