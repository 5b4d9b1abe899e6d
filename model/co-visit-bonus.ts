// The co-visitation bonus's shape (GruModelConfig.coVisitBonus), shared by the trainer's scorer
// and the worker's ranker. No TF.js here: the worker's entry ranks with it before the model part.

/** Co-visitation ranks that earn a share of the bonus: rank r (0-based) earns 1 − r / span. */
export const CO_VISIT_BONUS_SPAN = 20

/** The share of `coVisitBonus` an item at `rank` in the last item's co-visitation list earns. */
export function coVisitShare(rank: number): number {
  return rank < CO_VISIT_BONUS_SPAN ? 1 - rank / CO_VISIT_BONUS_SPAN : 0
}
