/**
 * The reads the server makes, behind one interface: channel policies take a `Directory`, so they
 * stay plain functions of their inputs. The server's only implementation is Prisma
 * (prisma-directory.ts); nothing here is called per delivered message, only per handshake and
 * per subscribe.
 */
import type { NotificationPayload } from '../protocol/index.ts';

export type Tier = 'BASIC' | 'PREMIUM' | 'VIP';

export interface PostAccessFacts {
  id: string;
  authorId: string;
  isLocked: boolean;
  requiredTier: Tier;
}

export interface SubscriptionFacts {
  status: 'ACTIVE' | 'CANCELLED' | 'EXPIRED';
  tier: Tier;
  expiresAt: Date | null;
}

/** What the database says about a session token's user and browser session. */
export interface SessionState {
  exists: boolean;
  /** "Sign out everywhere" cutoff: tokens issued at or before it are void. */
  sessionsValidAfter: Date | null;
  /** The token's `sid` was signed out. */
  sessionRevoked: boolean;
  /**
   * The user is a creator: only creators' sockets are tracked for `creator_presence` (nobody can
   * subscribe to the creator_ channel of anyone else), so the others cost presence nothing.
   */
  isCreator: boolean;
}

/** The two participants of a conversation, in the stored order (userAId < userBId). */
export type ConversationParticipants = readonly [string, string];

export interface Directory {
  /** One round trip per handshake and per refresh. */
  sessionState(userId: string, sessionId: string | undefined): Promise<SessionState>;
  creatorExists(creatorId: string): Promise<boolean>;
  findPost(postId: string): Promise<PostAccessFacts | null>;
  findSubscription(subscriberId: string, creatorId: string): Promise<SubscriptionFacts | null>;
  hasPurchased(userId: string, postId: string): Promise<boolean>;
  /** The newest unread ones and the unread count, read in one snapshot. */
  unreadNotifications(userId: string, limit: number): Promise<{ notifications: NotificationPayload[]; count: number }>;
  /**
   * Notifications created after `lastId` (newest first, at most `limit`; all unread ones when
   * `lastId` is not the user's) and the unread count, read in one snapshot.
   */
  notificationsAfter(userId: string, lastId: string, limit: number): Promise<{ notifications: NotificationPayload[]; unreadCount: number }>;
  /**
   * The two users of a direct-message conversation, or null when there is no such conversation.
   * Participants never change once the conversation exists (typing frames, per conversation).
   */
  conversationParticipants(conversationId: string): Promise<ConversationParticipants | null>;
  /** Cheap round trip for /health. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
