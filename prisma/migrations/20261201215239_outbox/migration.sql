-- AlterTable
ALTER TABLE "Post" ADD COLUMN     "statsVersion" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "OutboxEvent" (
    "id" BIGSERIAL NOT NULL,
    "channels" TEXT[],
    "type" TEXT NOT NULL,
    "data" JSONB NOT NULL,
    "eventId" UUID NOT NULL DEFAULT gen_random_uuid(),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "availableAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sentAt" TIMESTAMP(3),
    "failedAt" TIMESTAMP(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "OutboxEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "OutboxEvent_sentAt_id_idx" ON "OutboxEvent"("sentAt", "id");

-- Written by hand (Prisma does not model triggers): every statement that inserts outbox rows
-- wakes the relays listening on the channel fonana_outbox. NOTIFY is delivered at commit, and
-- identical notifications of one transaction are folded into one, so a request that enqueues
-- several events wakes each relay once, and a rolled-back insert wakes nobody.
--
-- No semicolon may appear inside a statement of this file, comments included: the driver
-- adapter of the WebAssembly schema engine (scripts/db/schema-engine.ts) splits migration
-- scripts on every semicolon. The PL/pgSQL body is therefore an E'' string in which \073 is
-- the semicolon (the body reads: BEGIN, PERFORM pg_notify('fonana_outbox', ''), RETURN NULL, END).
CREATE FUNCTION "fonana_outbox_notify"() RETURNS trigger LANGUAGE plpgsql AS
E'BEGIN PERFORM pg_notify(\'fonana_outbox\', \'\')\073 RETURN NULL\073 END';

CREATE TRIGGER "OutboxEvent_notify"
AFTER INSERT ON "OutboxEvent"
FOR EACH STATEMENT EXECUTE FUNCTION "fonana_outbox_notify"();
