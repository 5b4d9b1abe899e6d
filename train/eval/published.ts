// Published results under the SR-GNN/NARM protocol (Recall@20 / MRR@20 in %), as listed in
// the papers report them (`source`). Keyed by dataset folder name; other datasets have no
// published row.

export interface PublishedResult {
  model: string
  recall20: number
  mrr20: number
  source: string
}

export const PUBLISHED: Record<string, PublishedResult[]> = {
  'diginetica-srgnn': [
    { model: 'POP', recall20: 0.89, mrr20: 0.2, source: 'SR-GNN (AAAI 2019)' },
    { model: 'S-POP', recall20: 21.06, mrr20: 13.68, source: 'SR-GNN (AAAI 2019)' },
    { model: 'Item-KNN', recall20: 35.75, mrr20: 11.57, source: 'SR-GNN (AAAI 2019)' },
    { model: 'GRU4Rec', recall20: 29.45, mrr20: 8.33, source: 'SR-GNN (AAAI 2019)' },
    { model: 'NARM', recall20: 49.7, mrr20: 16.17, source: 'SR-GNN (AAAI 2019)' },
    { model: 'STAMP', recall20: 45.64, mrr20: 14.32, source: 'SR-GNN (AAAI 2019)' },
    { model: 'SR-GNN', recall20: 50.73, mrr20: 17.59, source: 'SR-GNN (AAAI 2019)' },
    { model: 'GCE-GNN', recall20: 54.22, mrr20: 19.04, source: 'GCE-GNN (SIGIR 2020)' },
  ],
}
