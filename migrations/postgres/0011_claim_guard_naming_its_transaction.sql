-- The claim guard of 0010, for statements that carry the steps of several write transactions
-- (src/store/postgres/batched.rs): the error names the place of the transaction whose claim
-- failed within its statement, so that only that one is set aside. 0010's guard stays for a
-- process of the previous version during a rolling upgrade.
CREATE FUNCTION tessera_claimed(changed BIGINT, place INTEGER) RETURNS BIGINT
LANGUAGE plpgsql AS $$
BEGIN
    IF changed <> 1 THEN
        RAISE EXCEPTION 'the claim changed % rows, not one', changed
            USING ERRCODE = 'TS001', DETAIL = place::text;
    END IF;
    RETURN changed;
END
$$;
