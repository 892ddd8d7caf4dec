/** Prisma's "record to update/delete does not exist" (a concurrent delete won the race). */
export function isRecordNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2025';
}
